using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using TunnelMesh.Net.ControlBench;

// tunnelmesh-controlbench: see BenchOptions.Usage.
if (!BenchRun.TryParse("tunnelmesh-controlbench", BenchOptions.Usage, () => BenchOptions.Parse(args), out BenchOptions? options, out int usageExit))
{
    return usageExit;
}

using var run = new BenchRun(TimeSpan.FromSeconds(options.TimeoutSeconds));
try
{
    if (options.Role == "coordinator")
    {
        return await CoordinatorRole.RunAsync(options, run.Token);
    }

    var (soft, hard) = FileLimit.RaiseToHard();
    var report = new Report
    {
        ProcessorCount = Environment.ProcessorCount,
        LoadAverageStart = LoadAverage.Read(),
        OpenFileLimit = soft,
        OpenFileHardLimit = hard,
        Runtime = RuntimeInformation.FrameworkDescription,
        ServerGc = System.Runtime.GCSettings.IsServerGC,
    };
    Console.WriteLine(FormattableString.Invariant($"tunnelmesh-controlbench: {report.ProcessorCount} CPUs, load average {report.LoadAverageStart:F2}, open-file limit {soft} (hard {hard}), {report.Runtime}, {(report.ServerGc ? "server" : "workstation")} GC"));
    if (options.StartupRuns > 0)
    {
        await using CoordinatorProcess coordinator = await CoordinatorProcess.StartAsync(options, run.Token);
        StartupResult s = await StartupBench.RunAsync(options, coordinator, run.Token);
        report.Startup = s;
        Console.WriteLine($"StartAsync -> first byte at the peer, {s.Runs} runs (ms from the StartAsync call):");
        Console.WriteLine($"  StartAsync returned   {s.Started}");
        Console.WriteLine($"  dial connected        {s.Connected}");
        Console.WriteLine($"  byte delivered        {s.Delivered}");
        Console.WriteLine($"  paths at delivery     {string.Join(", ", s.Each.GroupBy(r => r.Path).Select(g => $"{g.Key} x{g.Count()}"))}");
    }

    foreach (int n in options.NodeCounts)
    {
        Console.Error.WriteLine($"  {n} simulated nodes ...");
        FanoutResult f = await FanoutBench.RunAsync(options, n, run.Token);
        report.Fanout.Add(f);
        Print(f);
    }

    report.LoadAverageEnd = LoadAverage.Read();
    Console.WriteLine("JSON " + JsonSerializer.Serialize(report, Json.Options));
    return 0;
}
catch (OperationCanceledException) when (run.TimedOut)
{
    Console.Error.WriteLine($"tunnelmesh-controlbench: timed out after {options.TimeoutSeconds} s");
    return 3;
}
catch (OperationCanceledException) when (run.Interrupted)
{
    Console.Error.WriteLine("tunnelmesh-controlbench: interrupted");
    return 130;
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"tunnelmesh-controlbench: {ex.Message}");
    return 2;
}
catch (BenchFailedException ex)
{
    Console.Error.WriteLine($"tunnelmesh-controlbench: {ex.Message}");
    return 1;
}

static void Print(FanoutResult f)
{
    static string Mb(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture) + " MiB";
    var inv = CultureInfo.InvariantCulture;
    Console.WriteLine(string.Create(inv, $"{f.Nodes} simulated nodes (load average {f.LoadAverageBefore:F2} -> {f.LoadAverageAfter:F2}):"));
    Console.WriteLine(string.Create(inv, $"  join       {f.Joined} in {f.JoinSeconds:F1} s = {f.JoinRate:F0}/s (per tenth: {string.Join(" ", f.JoinRateByTenth)}), answers {Mb(f.JoinResponseBytes)}, coordinator CPU {f.JoinCpuSeconds:F1} s"));
    Console.WriteLine(string.Create(inv, $"  streams    connected {f.ConnectSeconds:F1} s, all snapshots {f.SnapshotsSeconds:F1} s, settled {f.SettleSeconds:F1} s; {f.StreamMessages} messages, {Mb(f.StreamBytes)}; coordinator CPU {f.ConnectCpuSeconds:F1} s"));
    if (f.CoordinatorConnected is { } c && f.CoordinatorConnectedAfterGc is { } g)
    {
        Console.WriteLine(string.Create(inv, $"  memory     at {f.Nodes} streams: RSS {Mb(c.RssBytes)} (peak {Mb(c.PeakRssBytes)}), managed heap {Mb(c.ManagedHeapBytes)}, live after full GC {Mb(g.ManagedHeapBytes)} (RSS {Mb(g.RssBytes)}), {c.Threads} threads, {c.OpenFiles} fds; idle before: RSS {Mb(f.CoordinatorIdle!.RssBytes)}, heap {Mb(f.CoordinatorIdle.ManagedHeapBytes)}"));
    }

    foreach (var (name, ch) in new[] { ("join", f.JoinChange), ("rename", f.RenameChange) })
    {
        if (ch is not null)
        {
            Console.WriteLine(string.Create(inv, $"  {name,-10} reached {ch.Received}/{f.Nodes}{(ch.Complete ? "" : " (INCOMPLETE)")} in {ch.TotalMs:F1} ms (API call {ch.ApiCallMs:F1} ms); per node ms {ch.PerNodeMs}; coordinator CPU {ch.CoordinatorCpuSeconds * 1000:F0} ms, allocated {Mb(ch.CoordinatorAllocatedBytes)}"));
        }
    }

    Console.WriteLine(string.Create(inv, $"  this process (simulated nodes) CPU {f.ClientCpuSeconds:F1} s"));
    foreach (string note in f.Notes)
    {
        Console.WriteLine("  note: " + note);
    }
}

internal sealed class Report
{
    public int ProcessorCount { get; set; }

    public double LoadAverageStart { get; set; }

    public double LoadAverageEnd { get; set; }

    public long OpenFileLimit { get; set; }

    public long OpenFileHardLimit { get; set; }

    public string Runtime { get; set; } = "";

    public bool ServerGc { get; set; }

    public StartupResult? Startup { get; set; }

    public List<FanoutResult> Fanout { get; } = [];
}
