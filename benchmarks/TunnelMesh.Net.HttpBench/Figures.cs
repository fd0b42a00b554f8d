using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Serialization;

namespace TunnelMesh.Net.HttpBench;

/// <summary>What one scenario did on one path, added up over the rounds.</summary>
internal sealed class Figures(Scenario scenario, ClientPath path)
{
    private readonly List<double> _latencies = [];

    [JsonConverter(typeof(JsonStringEnumConverter<Scenario>))]
    public Scenario Scenario { get; } = scenario;

    [JsonConverter(typeof(JsonStringEnumConverter<ClientPath>))]
    public ClientPath Path { get; } = path;

    /// <summary>Requests completed (a transfer is one request).</summary>
    public long Requests { get; private set; }

    /// <summary>Body bytes moved (transfers only).</summary>
    public long Bytes { get; private set; }

    public double WallSeconds { get; private set; }

    /// <summary>Whole-process CPU time (user + system, every thread: client, server, both nodes).</summary>
    public double CpuSeconds { get; private set; }

    /// <summary>GC.GetTotalAllocatedBytes(precise: true) delta: every thread of the process.</summary>
    public long AllocatedBytes { get; private set; }

    public int Gen0 { get; private set; }

    public int Gen1 { get; private set; }

    public int Gen2 { get; private set; }

    /// <summary>WireGuard transport bytes both nodes sent (mesh and socks paths; 0 on loopback).</summary>
    public long TunnelBytes { get; private set; }

    /// <summary>Packets both nodes dropped (any reason).</summary>
    public long Drops { get; private set; }

    /// <summary>False when a round was cut short by --scenario-timeout.</summary>
    public bool Complete { get; private set; } = true;

    public double RequestsPerSecond => WallSeconds > 0 ? Requests / WallSeconds : 0;

    public double Gbps => WallSeconds > 0 ? Bytes * 8 / WallSeconds / 1e9 : 0;

    /// <summary>CPU time over wall time: how many of the machine's cores the process kept busy.</summary>
    public double CpuCores => WallSeconds > 0 ? CpuSeconds / WallSeconds : 0;

    public double CpuMicrosecondsPerRequest => Requests > 0 ? CpuSeconds * 1e6 / Requests : 0;

    public double CpuSecondsPerGiB => Bytes > 0 ? CpuSeconds / (Bytes / (double)(1L << 30)) : 0;

    public double AllocatedBytesPerRequest => Requests > 0 ? AllocatedBytes / (double)Requests : 0;

    public double TunnelBytesPerRequest => Requests > 0 ? TunnelBytes / (double)Requests : 0;

    /// <summary>Tunnel bytes over body bytes: the WireGuard, IP and TCP headers and the ACKs, as a factor.</summary>
    public double TunnelBytesPerBodyByte => Bytes > 0 ? TunnelBytes / (double)Bytes : 0;

    public double AllocatedBytesPerMiB => Bytes > 0 ? AllocatedBytes / (Bytes / (double)(1L << 20)) : 0;

    /// <summary>Per-request latency in µs (small-GET scenarios only).</summary>
    public Summary? LatencyMicroseconds => _latencies.Count > 0 ? Summary.Of(_latencies) : null;

    public void Add(Meter.Reading r, long requests, long bytes, IEnumerable<double>? latencies, bool complete, (long SentBytes, long Drops) meshDelta)
    {
        TunnelBytes += meshDelta.SentBytes;
        Drops += meshDelta.Drops;
        Requests += requests;
        Bytes += bytes;
        WallSeconds += r.WallSeconds;
        CpuSeconds += r.CpuSeconds;
        AllocatedBytes += r.AllocatedBytes;
        Gen0 += r.Gen0;
        Gen1 += r.Gen1;
        Gen2 += r.Gen2;
        Complete &= complete;
        if (latencies is not null)
        {
            _latencies.AddRange(latencies);
        }
    }
}

/// <summary>Wall time, process CPU, allocation and GC counts from <see cref="Start"/> to <see cref="Stop"/>.</summary>
internal readonly struct Meter
{
    private readonly long _timestamp;
    private readonly TimeSpan _cpu;
    private readonly long _allocated;
    private readonly int _gen0;
    private readonly int _gen1;
    private readonly int _gen2;

    private Meter(long timestamp, TimeSpan cpu, long allocated, int gen0, int gen1, int gen2)
    {
        _timestamp = timestamp;
        _cpu = cpu;
        _allocated = allocated;
        _gen0 = gen0;
        _gen1 = gen1;
        _gen2 = gen2;
    }

    /// <summary>A full collection first, so that garbage of the previous measurement is not collected in this one.</summary>
    public static Meter Start()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        TimeSpan cpu = Environment.CpuUsage.TotalTime;
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
        return new Meter(Stopwatch.GetTimestamp(), cpu, allocated, gen0, gen1, gen2);
    }

    public Reading Stop()
    {
        long now = Stopwatch.GetTimestamp();
        TimeSpan cpu = Environment.CpuUsage.TotalTime;
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        return new Reading(
            Stopwatch.GetElapsedTime(_timestamp, now).TotalSeconds,
            (cpu - _cpu).TotalSeconds,
            allocated - _allocated,
            GC.CollectionCount(0) - _gen0,
            GC.CollectionCount(1) - _gen1,
            GC.CollectionCount(2) - _gen2);
    }

    public readonly record struct Reading(double WallSeconds, double CpuSeconds, long AllocatedBytes, int Gen0, int Gen1, int Gen2);
}

/// <summary>A path's figures over the reference's (loopback) for one scenario: rate, latency, CPU and allocation per request or per byte.</summary>
internal sealed record Ratio(
    [property: JsonConverter(typeof(JsonStringEnumConverter<Scenario>))] Scenario Scenario,
    [property: JsonConverter(typeof(JsonStringEnumConverter<ClientPath>))] ClientPath Path,
    double Rate,
    double? P50,
    double? P99,
    double CpuPerUnit,
    double AllocatedPerUnit)
{
    public static Ratio Of(Figures path, Figures reference)
    {
        bool transfer = path.Scenario is Scenario.Download or Scenario.Upload;
        static double Div(double a, double b) => b > 0 ? a / b : double.NaN;
        return new Ratio(
            path.Scenario,
            path.Path,
            transfer ? Div(path.Gbps, reference.Gbps) : Div(path.RequestsPerSecond, reference.RequestsPerSecond),
            path.LatencyMicroseconds is { } l && reference.LatencyMicroseconds is { } r ? Div(l.P50, r.P50) : null,
            path.LatencyMicroseconds is { } l2 && reference.LatencyMicroseconds is { } r2 ? Div(l2.P99, r2.P99) : null,
            transfer ? Div(path.CpuSecondsPerGiB, reference.CpuSecondsPerGiB) : Div(path.CpuMicrosecondsPerRequest, reference.CpuMicrosecondsPerRequest),
            transfer ? Div(path.AllocatedBytesPerMiB, reference.AllocatedBytesPerMiB) : Div(path.AllocatedBytesPerRequest, reference.AllocatedBytesPerRequest));
    }
}
