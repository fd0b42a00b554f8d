using System.Diagnostics;
using System.Globalization;
using System.Text;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.Server.Tests.Support;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace TunnelMesh.Net.Server.Tests.Nat;

/// <summary>Exists only when <c>TM_NAT_BENCH=1</c> (benchmarks/nat/run.sh sets it), as root; not part of the test suite.</summary>
[XunitTestCaseDiscoverer("TunnelMesh.Net.Server.Tests.Support.OptInBenchmarkDiscoverer", "TunnelMesh.Net.Server.Tests")]
public sealed class NatBenchFactAttribute : FactAttribute, IOptInBenchmark
{
    public NatBenchFactAttribute()
    {
        if (!ExternalTools.IsRoot)
        {
            Skip = "needs root (network namespaces)";
        }
    }

    public string Variable => "TM_NAT_BENCH";
}

/// <summary>
/// The NAT figures of docs/BENCHMARKS.md, measured in one <see cref="NatLab"/>: time from both nodes
/// online to a direct path between two easy NATs (fresh nodes every run, conntrack flushed between
/// runs), then throughput of one transfer on that direct path and one through the relay (two nodes
/// behind two hard NATs), with the coordinator's CPU time per relayed GiB (/proc/PID/stat of the
/// serve process). Writes a summary to the test output and to <c>TM_NAT_BENCH_OUT</c> when set.
/// </summary>
public sealed class NatBenchmark(ITestOutputHelper output)
{
    [NatBenchFact]
    public async Task Nat_traversal_figures()
    {
        int runs = int.Parse(Environment.GetEnvironmentVariable("TM_NAT_BENCH_RUNS") ?? "20", CultureInfo.InvariantCulture);
        long bytes = long.Parse(Environment.GetEnvironmentVariable("TM_NAT_BENCH_MIB") ?? "256", CultureInfo.InvariantCulture) << 20;
        var summary = new StringBuilder();
        void Line(string text)
        {
            output.WriteLine(text);
            summary.AppendLine(text);
        }

        await using var lab = await NatLab.StartAsync();
        var easyA = await lab.AddRouterAsync(NatKind.Easy);
        var easyB = await lab.AddRouterAsync(NatKind.Easy);
        var hardA = await lab.AddRouterAsync(NatKind.Hard);
        var hardB = await lab.AddRouterAsync(NatKind.Hard);
        var hostA = await lab.AddHostAsync(easyA);
        var hostB = await lab.AddHostAsync(easyB);
        var hostC = await lab.AddHostAsync(hardA);
        var hostD = await lab.AddHostAsync(hardB);

        // 1. Both online → direct, fresh nodes (new keys, new ports) each run.
        var times = new List<double>();
        for (int run = 0; run < runs; run++)
        {
            await easyA.FlushConntrackAsync();
            await easyB.FlushConntrackAsync();
            await using var b = await lab.StartNodeAsync($"b{run}", hostB);
            await using var a = await lab.StartNodeAsync($"a{run}", hostA);
            long online = Math.Max(a.OnlineTimestamp, b.OnlineTimestamp);
            await a.PingAsync(b); // the first packet, as in NatTraversalTests
            await NatTraversalTests.BothAsync(a, b, p => p.IsDirect, $"run {run}: direct", TimeSpan.FromSeconds(60));
            times.Add(Stopwatch.GetElapsedTime(online).TotalSeconds);
        }

        times.Sort();
        Line($"both online -> direct, easy NATs, {runs} runs: p50 {Percentile(times, 0.5):0.00} s, p90 {Percentile(times, 0.9):0.00} s, max {times[^1]:0.00} s, min {times[0]:0.00} s");

        // 2. Throughput on a direct path (easy NATs) and through the relay (hard NATs), coordinator CPU for each.
        using var directSink = LabTransfer.Listen(hostB);
        var db = await lab.StartNodeAsync("direct-b", hostB, "--forward", directSink.ForwardOption);
        var da = await lab.StartNodeAsync("direct-a", hostA, "--socks5", "127.0.0.1:0");
        await da.PingAsync(db);
        await NatTraversalTests.BothAsync(da, db, p => p.IsDirect, "direct", TimeSpan.FromSeconds(60));
        var (direct, directCpu) = await MeasureAsync(lab, directSink, da, db, bytes);
        Line($"direct path (easy NATs): {bytes >> 20} MiB in {direct.Elapsed.TotalSeconds:0.00} s = {direct.MiBps:0.0} MiB/s; coordinator CPU {directCpu.TotalSeconds:0.00} s; path after: {(await da.PeerAsync(db))!.Path}");

        using var relaySink = LabTransfer.Listen(hostD);
        var rd = await lab.StartNodeAsync("relay-d", hostD, "--forward", relaySink.ForwardOption);
        var rc = await lab.StartNodeAsync("relay-c", hostC, "--socks5", "127.0.0.1:0");
        await rc.PingAsync(rd);
        await NatTraversalTests.BothAsync(rc, rd, p => p.Online, "online", TimeSpan.FromSeconds(60));
        var (relayed, relayCpu) = await MeasureAsync(lab, relaySink, rc, rd, bytes);
        double gib = bytes / (double)(1L << 30);
        Line($"relay (hard NATs): {bytes >> 20} MiB in {relayed.Elapsed.TotalSeconds:0.00} s = {relayed.MiBps:0.0} MiB/s; coordinator CPU {relayCpu.TotalSeconds:0.00} s = {relayCpu.TotalSeconds / gib:0.00} CPU s per relayed GiB; path after: {(await rc.PeerAsync(rd))!.Path}");
        Line($"relay / direct throughput: {relayed.MiBps / direct.MiBps:0.00}");

        if (Environment.GetEnvironmentVariable("TM_NAT_BENCH_OUT") is { Length: > 0 } file)
        {
            await File.WriteAllTextAsync(file, summary.ToString());
        }
    }

    private static async Task<(LabTransfer.Result Result, TimeSpan CoordinatorCpu)> MeasureAsync(NatLab lab, LabTransfer sink, LabNode from, LabNode to, long bytes)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var cpu = lab.Coordinator.CpuTime();
        var result = await sink.RunAsync(from, to, bytes, deadline.Token);
        var used = lab.Coordinator.CpuTime() - cpu;
        result.AssertIntact();
        return (result, used);
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
