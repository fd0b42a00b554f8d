using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using TunnelMesh.Net.ForwardBench;
using TunnelMesh.Net.HttpBench;

// tunnelmesh-forwardbench: see Usage.
const string Usage = """
    usage: tunnelmesh-forwardbench [options]
      --bytes N      bytes per transfer, each way (suffix K, M, G: binary; default 256M)
      --rounds R     rounds; each moves --bytes up and down through each relay's forwarder, the order of
                     the relays reversed every other round (default 3; figures add the rounds up)
      --timeout S    bound on the whole run (default 600)
      --alloc-trace  sample what each transfer allocates, by type (GCAllocationTick, ~1 per 100 KB), to stderr;
                     the listener's own allocation then counts in the figures
    One process: two MeshNodes with static WireGuard peers over 127.0.0.1 UDP; node A runs a MeshPortForwarder
    per relay (sockets: the relay before issue 10, kept here as the baseline; pipelines: TcpRelay on
    Pipelines.Sockets.Unofficial) toward kernel TCP targets on 127.0.0.1; node B's client dials them.
    Exit codes: 0 ok, 1 a transfer failed, 2 usage, 3 timeout, 130 interrupted.
    """;

if (!BenchRun.TryParse("tunnelmesh-forwardbench", Usage, () => Parse(args), out Options? options, out int usageExit))
{
    return usageExit;
}

using var run = new BenchRun(TimeSpan.FromSeconds(options.TimeoutSeconds));
try
{
    Console.WriteLine(FormattableString.Invariant(
        $"tunnelmesh-forwardbench: {Environment.ProcessorCount} CPUs, load average {LoadAverage()}, {RuntimeInformation.FrameworkDescription}, {options.Bytes >> 20} MiB each way, {options.Rounds} rounds"));
    using AllocationTrace? trace = options.AllocTrace ? new AllocationTrace() : null;
    await using var host = await ForwardHost.StartAsync(run.Token);
    Relay[] relays = Enum.GetValues<Relay>();
    Direction[] directions = Enum.GetValues<Direction>();
    foreach (Relay relay in relays)
    {
        foreach (Direction direction in directions)
        {
            await host.TransferAsync(relay, direction, Math.Min(options.Bytes, 16L << 20), run.Token);
        }
    }

    var totals = new Dictionary<(Relay, Direction), Totals>();
    for (int round = 0; round < options.Rounds; round++)
    {
        IEnumerable<Relay> order = round % 2 == 0 ? relays : relays.Reverse();
        foreach (Direction direction in directions)
        {
            foreach (Relay relay in order)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
                long drops = host.Drops();
                TimeSpan cpu = Environment.CpuUsage.TotalTime;
                long allocated = GC.GetTotalAllocatedBytes(precise: true);
                trace?.Start();
                long start = Stopwatch.GetTimestamp();
                await host.TransferAsync(relay, direction, options.Bytes, run.Token);
                double wall = Stopwatch.GetElapsedTime(start).TotalSeconds;
                foreach (var (type, bytes) in trace?.Stop().Take(8) ?? [])
                {
                    Console.Error.WriteLine(FormattableString.Invariant($"    alloc-trace {direction} {relay}: {bytes / 1024.0,10:F0} KiB  {type}"));
                }

                var t = totals.GetValueOrDefault((relay, direction)) ?? (totals[(relay, direction)] = new Totals());
                t.Add(wall, (Environment.CpuUsage.TotalTime - cpu).TotalSeconds, GC.GetTotalAllocatedBytes(precise: true) - allocated, options.Bytes, host.Drops() - drops);
                Console.Error.WriteLine(FormattableString.Invariant($"  round {round + 1}: {direction} {relay}: {options.Bytes * 8 / wall / 1e9:F2} Gbit/s"));
            }
        }
    }

    Console.WriteLine();
    Console.WriteLine("| direction | relay | Gbit/s (sum of rounds) | Gbit/s min–max | CPU-s/GiB | bytes allocated/MiB | drops |");
    Console.WriteLine("|---|---|---:|---:|---:|---:|---:|");
    foreach (Direction direction in directions)
    {
        foreach (Relay relay in relays)
        {
            Totals t = totals[(relay, direction)];
            Console.WriteLine(FormattableString.Invariant(
                $"| {direction.ToString().ToLowerInvariant()} | {relay.ToString().ToLowerInvariant()} | {t.Gbps:F2} | {t.MinGbps:F2}–{t.MaxGbps:F2} | {t.CpuSecondsPerGiB:F2} | {t.AllocatedPerMiB:F0} | {t.Drops} |"));
        }
    }

    Console.WriteLine();
    Console.WriteLine("| direction | pipelines / sockets: throughput | CPU per GiB | allocation per MiB |");
    Console.WriteLine("|---|---:|---:|---:|");
    foreach (Direction direction in directions)
    {
        Totals p = totals[(Relay.Pipelines, direction)];
        Totals s = totals[(Relay.Sockets, direction)];
        Console.WriteLine(FormattableString.Invariant(
            $"| {direction.ToString().ToLowerInvariant()} | {p.Gbps / s.Gbps:F3} | {p.CpuSecondsPerGiB / s.CpuSecondsPerGiB:F3} | {Ratio(p.AllocatedPerMiB, s.AllocatedPerMiB)} |"));
    }

    Console.WriteLine(FormattableString.Invariant($"load average at the end {LoadAverage()}"));
    return 0;
}
catch (OperationCanceledException) when (run.TimedOut)
{
    Console.Error.WriteLine($"tunnelmesh-forwardbench: timed out after {options.TimeoutSeconds} s");
    return 3;
}
catch (OperationCanceledException) when (run.Interrupted)
{
    return 130;
}
catch (Exception ex) when (ex is InvalidOperationException or IOException or System.Net.Sockets.SocketException)
{
    Console.Error.WriteLine($"tunnelmesh-forwardbench: {ex.Message}");
    return 1;
}

static string Ratio(double a, double b) => b > 0 ? (a / b).ToString("F3", CultureInfo.InvariantCulture) : "n/a";

static string LoadAverage()
{
    try
    {
        return File.ReadAllText("/proc/loadavg").Split(' ')[0];
    }
    catch (IOException)
    {
        return "?";
    }
}

static Options Parse(string[] args)
{
    var options = new Options();
    for (int i = 0; i < args.Length; i++)
    {
        string Value() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{args[i]} needs a value");
        options = args[i] switch
        {
            "--bytes" => options with { Bytes = BenchArgs.Size("--bytes", Value(), 1, 1L << 40, " from 1 byte to 1T") },
            "--rounds" => options with { Rounds = BenchArgs.Int("--rounds", Value(), 1, 100) },
            "--timeout" => options with { TimeoutSeconds = BenchArgs.Int("--timeout", Value(), 1) },
            "--alloc-trace" => options with { AllocTrace = true },
            "--help" or "-h" => throw new UsageException(""),
            _ => throw new UsageException($"unknown option {args[i]}"),
        };
    }

    return options;
}

/// <summary>The command line.</summary>
internal sealed record Options
{
    public long Bytes { get; init; } = 256L << 20;

    public int Rounds { get; init; } = 3;

    public int TimeoutSeconds { get; init; } = 600;

    public bool AllocTrace { get; init; }
}

/// <summary>One relay's figures in one direction, added up over the rounds.</summary>
internal sealed class Totals
{
    private double _wall;
    private double _cpu;
    private long _allocated;
    private long _bytes;

    public double MinGbps { get; private set; } = double.MaxValue;

    public double MaxGbps { get; private set; }

    public long Drops { get; private set; }

    public double Gbps => _bytes * 8 / _wall / 1e9;

    public double CpuSecondsPerGiB => _cpu / (_bytes / (double)(1L << 30));

    public double AllocatedPerMiB => _allocated / (_bytes / (double)(1L << 20));

    public void Add(double wall, double cpu, long allocated, long bytes, long drops)
    {
        _wall += wall;
        _cpu += cpu;
        _allocated += allocated;
        _bytes += bytes;
        Drops += drops;
        double gbps = bytes * 8 / wall / 1e9;
        MinGbps = Math.Min(MinGbps, gbps);
        MaxGbps = Math.Max(MaxGbps, gbps);
    }
}
