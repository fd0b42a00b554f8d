using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using TunnelMesh.Net.HttpBench;

// tunnelmesh-httpbench: see BenchOptions.Usage.
if (!BenchRun.TryParse("tunnelmesh-httpbench", BenchOptions.Usage, () => BenchOptions.Parse(args), out BenchOptions? options, out int usageExit))
{
    return usageExit;
}

using var run = new BenchRun(TimeSpan.FromSeconds(options.TimeoutSeconds));
TextWriter text = options.Json ? Console.Error : Console.Out;
try
{
    var report = new Report
    {
        ProcessorCount = Environment.ProcessorCount,
        LoadAverageStart = LoadAverage.Read(),
        Runtime = RuntimeInformation.FrameworkDescription,
        ServerGc = System.Runtime.GCSettings.IsServerGC,
        Requests = options.Requests,
        Concurrency = options.Concurrency,
        Bytes = options.Bytes,
        Rounds = options.Rounds,
    };
    text.WriteLine(FormattableString.Invariant($"tunnelmesh-httpbench: {report.ProcessorCount} CPUs, load average {report.LoadAverageStart:F2}, {report.Runtime}, {(report.ServerGc ? "server" : "workstation")} GC"));

    using AllocationTrace? trace = options.AllocTrace ? new AllocationTrace() : null;
    await using var host = await BenchHost.StartAsync(options.Paths.Contains(ClientPath.Socks), run.Token);
    var single = new Dictionary<ClientPath, HttpClient>();
    var pooled = new Dictionary<ClientPath, HttpClient>();
    try
    {
        foreach (ClientPath path in options.Paths)
        {
            single[path] = host.CreateClient(path, maxConnections: 1);
            pooled[path] = host.CreateClient(path, maxConnections: options.Concurrency);
        }

        bool requests = options.Scenarios.Any(s => s is Scenario.Sequential or Scenario.Concurrent);
        bool transfers = options.Scenarios.Any(s => s is Scenario.Download or Scenario.Upload);
        var warmup = Stopwatch.StartNew();
        foreach (ClientPath path in options.Paths)
        {
            Console.Error.WriteLine($"  warm-up {path} ...");
            long far = Stopwatch.GetTimestamp() + Stopwatch.Frequency * options.ScenarioTimeoutSeconds;
            if (requests)
            {
                await Scenarios.SequentialAsync(single[path], options.Warmup, far, run.Token);
                await Scenarios.ConcurrentAsync(pooled[path], options.Warmup, options.Concurrency, far, run.Token);
            }

            if (transfers)
            {
                await Scenarios.DownloadAsync(single[path], Math.Min(options.Bytes, 16L << 20), run.Token);
                await Scenarios.UploadAsync(single[path], Math.Min(options.Bytes, 16L << 20), run.Token);
            }
        }

        report.WarmupSeconds = warmup.Elapsed.TotalSeconds;
        var figures = new Dictionary<(Scenario, ClientPath), Figures>();
        foreach (Scenario scenario in options.Scenarios)
        {
            foreach (ClientPath path in options.Paths)
            {
                figures[(scenario, path)] = new Figures(scenario, path);
            }
        }

        for (int round = 0; round < options.Rounds; round++)
        {
            // The order of the paths alternates (A B C, C B A, ...) so that neither gets the quieter moments.
            IEnumerable<ClientPath> order = round % 2 == 0 ? options.Paths : options.Paths.Reverse();
            foreach (Scenario scenario in options.Scenarios)
            {
                foreach (ClientPath path in order)
                {
                    Console.Error.WriteLine($"  round {round + 1}/{options.Rounds}: {scenario} over {path} ...");
                    trace?.Start();
                    await MeasureAsync(figures[(scenario, path)], options, host, single[path], pooled[path], run.Token);
                    if (trace is not null)
                    {
                        foreach (var (type, bytes) in trace.Stop().Take(12))
                        {
                            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    alloc-trace {scenario} {path}: {bytes / 1024.0,10:F0} KiB  {type}"));
                        }
                    }
                }
            }
        }

        report.LoadAverageEnd = LoadAverage.Read();
        report.NodeDropsByReason = host.DropsByReason();
        foreach (Scenario scenario in options.Scenarios)
        {
            Figures reference = figures[(scenario, ClientPath.Loopback)];
            foreach (ClientPath path in options.Paths)
            {
                Figures f = figures[(scenario, path)];
                report.Results.Add(f);
                if (path != ClientPath.Loopback)
                {
                    report.Ratios.Add(Ratio.Of(f, reference));
                }
            }
        }

        if (options.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(report, Json.Options));
        }
        else
        {
            Print(text, report, options);
            text.WriteLine("JSON " + JsonSerializer.Serialize(report, Json.Compact));
        }

        return report.Results.All(r => r.Complete) ? 0 : 1;
    }
    finally
    {
        foreach (HttpClient client in single.Values.Concat(pooled.Values))
        {
            client.Dispose();
        }
    }
}
catch (OperationCanceledException) when (run.TimedOut)
{
    Console.Error.WriteLine($"tunnelmesh-httpbench: timed out after {options.TimeoutSeconds} s");
    return 3;
}
catch (OperationCanceledException) when (run.Interrupted)
{
    Console.Error.WriteLine("tunnelmesh-httpbench: interrupted");
    return 130;
}
catch (Exception ex) when (ex is BenchFailedException or HttpRequestException or IOException or InvalidOperationException)
{
    Console.Error.WriteLine($"tunnelmesh-httpbench: {ex.GetType().Name}: {ex.Message}");
    return 1;
}

static async Task MeasureAsync(Figures figures, BenchOptions options, BenchHost host, HttpClient single, HttpClient pooled, CancellationToken cancellationToken)
{
    long deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * options.ScenarioTimeoutSeconds;
    Meter meter;
    var before = host.MeshCounters();
    (long, long) Delta()
    {
        var after = host.MeshCounters();
        return (after.SentBytes - before.SentBytes, after.Drops - before.Drops);
    }

    switch (figures.Scenario)
    {
        case Scenario.Sequential:
        {
            meter = Meter.Start();
            var (done, latencies) = await Scenarios.SequentialAsync(single, options.Requests, deadline, cancellationToken);
            figures.Add(meter.Stop(), done, 0, latencies, done == options.Requests, Delta());
            break;
        }

        case Scenario.Concurrent:
        {
            meter = Meter.Start();
            var (done, latencies) = await Scenarios.ConcurrentAsync(pooled, options.Requests, options.Concurrency, deadline, cancellationToken);
            figures.Add(meter.Stop(), done, 0, latencies, done == options.Requests, Delta());
            break;
        }

        default:
        {
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            bound.CancelAfter(TimeSpan.FromSeconds(options.ScenarioTimeoutSeconds));
            meter = Meter.Start();
            try
            {
                long bytes = figures.Scenario == Scenario.Download
                    ? await Scenarios.DownloadAsync(single, options.Bytes, bound.Token)
                    : await Scenarios.UploadAsync(single, options.Bytes, bound.Token);
                figures.Add(meter.Stop(), 1, bytes, null, complete: true, Delta());
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Cut short by --scenario-timeout: the time is counted, the bytes are not (the rate says "did not finish").
                figures.Add(meter.Stop(), 0, 0, null, complete: false, Delta());
            }

            break;
        }
    }
}

static void Print(TextWriter w, Report report, BenchOptions options)
{
    var inv = CultureInfo.InvariantCulture;
    w.WriteLine(string.Create(inv, $"warm-up {report.WarmupSeconds:F1} s; load average {report.LoadAverageStart:F2} -> {report.LoadAverageEnd:F2}"));
    w.WriteLine("nodes' drops over the whole run: " + (report.NodeDropsByReason.Count == 0 ? "none" : string.Join(", ", report.NodeDropsByReason.Select(p => $"{p.Key} {p.Value}"))));
    w.WriteLine("CPU is the whole process (client, Kestrel, both nodes, the proxy); so is allocation (GC.GetTotalAllocatedBytes, all threads).");
    foreach (var group in report.Results.GroupBy(r => r.Scenario))
    {
        Scenario scenario = group.Key;
        bool transfer = scenario is Scenario.Download or Scenario.Upload;
        string title = scenario switch
        {
            Scenario.Sequential => $"sequential GET /small ({BenchHost.SmallSize} B), one keep-alive connection, {options.Rounds} x {options.Requests} per path",
            Scenario.Concurrent => $"concurrent GET /small, {options.Concurrency} workers, {options.Rounds} x {options.Requests} per path",
            Scenario.Download => $"download GET /bytes/{options.Bytes}, {options.Rounds} x {options.Bytes >> 20} MiB per path",
            _ => $"upload POST /sink, {options.Rounds} x {options.Bytes >> 20} MiB per path",
        };
        w.WriteLine();
        w.WriteLine(title + ":");
        if (transfer)
        {
            w.WriteLine("  path          Gbit/s   seconds  CPU cores  CPU s/GiB  alloc B/MiB  GCs 0/1/2  tunnel B/body B  drops");
        }
        else
        {
            w.WriteLine("  path           req/s   p50 us   p99 us  CPU cores  CPU us/req  alloc B/req  GCs 0/1/2  tunnel B/req  drops");
        }

        foreach (Figures f in group)
        {
            string gcs = $"{f.Gen0}/{f.Gen1}/{f.Gen2}";
            string tunnel = f.Path == ClientPath.Loopback ? "-" : transfer ? f.TunnelBytesPerBodyByte.ToString("F3", inv) : f.TunnelBytesPerRequest.ToString("F0", inv);
            string drops = f.Path == ClientPath.Loopback ? "-" : f.Drops.ToString(inv);
            string cut = f.Complete ? "" : "  INCOMPLETE (--scenario-timeout)";
            w.WriteLine(transfer
                ? string.Create(inv, $"  {Name(f.Path),-10} {f.Gbps,9:F3} {f.WallSeconds,9:F2} {f.CpuCores,10:F2} {f.CpuSecondsPerGiB,10:F2} {f.AllocatedBytesPerMiB,12:F0}  {gcs,-9}  {tunnel,15}  {drops,5}{cut}")
                : string.Create(inv, $"  {Name(f.Path),-10} {f.RequestsPerSecond,9:F0} {f.LatencyMicroseconds?.P50 ?? 0,8:F0} {f.LatencyMicroseconds?.P99 ?? 0,8:F0} {f.CpuCores,10:F2} {f.CpuMicrosecondsPerRequest,11:F0} {f.AllocatedBytesPerRequest,12:F0}  {gcs,-9}  {tunnel,12}  {drops,5}{cut}"));
        }

        foreach (Ratio r in report.Ratios.Where(r => r.Scenario == scenario))
        {
            string name = $"{Name(r.Path)}/loopback";
            w.WriteLine(transfer
                ? string.Create(inv, $"  {name,-16} {r.Rate,5:F2}x  (CPU per GiB {X(r.CpuPerUnit)}, allocation per MiB {X(r.AllocatedPerUnit)})")
                : string.Create(inv, $"  {name,-16} {r.Rate,5:F2}x  (p50 {X(r.P50)}, p99 {X(r.P99)}, CPU per request {X(r.CpuPerUnit)}, allocation per request {X(r.AllocatedPerUnit)})"));
        }
    }

    static string Name(ClientPath p) => p.ToString().ToLowerInvariant();
    static string X(double? ratio) => ratio switch
    {
        null => "-",
        >= 100 => ratio.Value.ToString("F0", CultureInfo.InvariantCulture) + "x",
        _ => ratio.Value.ToString("F2", CultureInfo.InvariantCulture) + "x",
    };
}

internal sealed class Report
{
    public int ProcessorCount { get; set; }

    public double LoadAverageStart { get; set; }

    public double LoadAverageEnd { get; set; }

    public string Runtime { get; set; } = "";

    public bool ServerGc { get; set; }

    public int Requests { get; set; }

    public int Concurrency { get; set; }

    public long Bytes { get; set; }

    public int Rounds { get; set; }

    public double WarmupSeconds { get; set; }

    /// <summary>Both nodes, the whole run (warm-up included).</summary>
    public SortedDictionary<string, long> NodeDropsByReason { get; set; } = [];

    public List<Figures> Results { get; } = [];

    public List<Ratio> Ratios { get; } = [];
}

internal static class Json
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static readonly JsonSerializerOptions Compact = new(Options) { WriteIndented = false };
}

internal static class LoadAverage
{
    /// <summary>The 1-minute load average from /proc/loadavg (NaN where there is none).</summary>
    public static double Read()
    {
        try
        {
            string first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.Parse(first, CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return double.NaN;
        }
    }
}
