using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using TunnelMesh.Net.Control;

namespace TunnelMesh.Net.ControlBench;

/// <summary>
/// N simulated nodes join a fresh coordinator and hold its map stream; then one change at a time
/// (a newcomer joins; the newcomer is renamed by the admin API) and the time until every simulated
/// node has the delta with it. The coordinator's CPU, RSS and heap are sampled between the phases.
/// </summary>
internal static class FanoutBench
{
    public static async Task<FanoutResult> RunAsync(BenchOptions options, int count, CancellationToken ct)
    {
        CoordinatorProcess coordinator = await CoordinatorProcess.StartAsync(options, ct);
        var nodes = new SimNode?[count];
        try
        {
            return await RunAsync(options, count, coordinator, nodes, ct);
        }
        finally
        {
            // The coordinator first: it closes every stream (1001) and each simulated node answers the close.
            await coordinator.DisposeAsync();
            foreach (SimNode? n in nodes)
            {
                n?.Abort();
            }
        }
    }

    private static async Task<FanoutResult> RunAsync(BenchOptions options, int count, CoordinatorProcess coordinator, SimNode?[] nodes, CancellationToken ct)
    {
        string key = await coordinator.CreateReusableKeyAsync(ct);
        var notes = new List<string>();
        var totals = new SimTotals();
        var result = new FanoutResult { Nodes = count, LoadAverageBefore = LoadAverage.Read() };
        CoordinatorStats idle = await coordinator.StatsAsync(collect: false, ct);
        result.CoordinatorIdle = idle;
        var (clientUser0, clientSystem0) = Rusage.Read();

        // ---- join ----
        long joinBytes = 0;
        long[] joinedAt = new long[count];
        using var joinHandler = new SocketsHttpHandler { MaxConnectionsPerServer = options.JoinConcurrency, PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
        using var http = new HttpClient(joinHandler) { BaseAddress = coordinator.BaseUri, Timeout = TimeSpan.FromSeconds(300) };
        using (var phase = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            phase.CancelAfter(TimeSpan.FromSeconds(options.PhaseTimeoutSeconds));
            long start = Stopwatch.GetTimestamp();
            int next = -1;
            int done = 0;
            async Task Worker()
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < count)
                {
                    var (node, bytes) = await JoinAsync(http, key, "sim-" + i.ToString("D5", CultureInfo.InvariantCulture), i, totals, phase.Token);
                    nodes[i] = node;
                    joinedAt[i] = Stopwatch.GetTimestamp();
                    Interlocked.Add(ref joinBytes, bytes);
                    int d = Interlocked.Increment(ref done);
                    if (d % Math.Max(1, count / 10) == 0)
                    {
                        Console.Error.WriteLine(FormattableString.Invariant($"  {count}: joined {d} in {Stopwatch.GetElapsedTime(start).TotalSeconds:F1} s"));
                    }
                }
            }

            try
            {
                await Task.WhenAll(Enumerable.Range(0, options.JoinConcurrency).Select(_ => Worker()));
            }
            catch (OperationCanceledException) when (phase.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                notes.Add($"joining stopped by --phase-timeout {options.PhaseTimeoutSeconds} s after {Volatile.Read(ref done)} of {count} nodes");
            }

            result.Joined = Volatile.Read(ref done);
            result.JoinSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            result.JoinRate = result.Joined / result.JoinSeconds;
            result.JoinResponseBytes = joinBytes;
            result.JoinRateByTenth = RatesByTenth(joinedAt, start);
        }

        CoordinatorStats afterJoin = await coordinator.StatsAsync(collect: false, ct);
        result.JoinCpuSeconds = afterJoin.CpuSeconds - idle.CpuSeconds;
        if (result.Joined < count)
        {
            var (user, system) = Rusage.Read();
            result.ClientCpuSeconds = user + system - clientUser0 - clientSystem0;
            result.LoadAverageAfter = LoadAverage.Read();
            result.Notes = notes;
            return result;
        }

        // ---- connect the map streams ----
        Uri map = new UriBuilder(coordinator.BaseUri) { Scheme = "ws", Path = "/api/v1/map" }.Uri;
        using var wsHandler = new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
        using var invoker = new HttpMessageInvoker(wsHandler);
        try
        {
            using (var phase = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                phase.CancelAfter(TimeSpan.FromSeconds(options.PhaseTimeoutSeconds));
                long start = Stopwatch.GetTimestamp();
                int next = -1;
                async Task Connector()
                {
                    int i;
                    while ((i = Interlocked.Increment(ref next)) < count)
                    {
                        await nodes[i]!.ConnectAsync(map, invoker, ct).WaitAsync(phase.Token);
                    }
                }

                await Task.WhenAll(Enumerable.Range(0, options.ConnectConcurrency).Select(_ => Connector()));
                result.ConnectSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;

                // Every stream has its snapshot, then nothing arrives for a while: the coordinator has settled.
                await UntilAsync(() => totals.Snapshots >= count || totals.Dropped > 0, phase.Token);
                result.SnapshotsSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                await QuietAsync(totals, coordinator, phase.Token);
                result.SettleSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                result.StreamBytes = totals.Bytes;
                result.StreamMessages = totals.Messages;
                if (totals.Dropped > 0)
                {
                    throw new BenchFailedException($"{totals.Dropped} map streams closed or failed while connecting");
                }
            }

            CoordinatorStats connected = await coordinator.StatsAsync(collect: false, ct);
            result.ConnectCpuSeconds = connected.CpuSeconds - afterJoin.CpuSeconds;
            result.CoordinatorConnected = connected;
            result.CoordinatorConnectedAfterGc = await coordinator.StatsAsync(collect: true, ct);
            await QuietAsync(totals, coordinator, ct);

            // ---- change 1: one more node joins ----
            string newcomerKey = RandomNodeKeys.Next();
            var joinWatch = new Watch(newcomerKey, null, count);
            totals.Watch = joinWatch;
            CoordinatorStats before = await coordinator.StatsAsync(collect: false, ct);
            joinWatch.Start = Stopwatch.GetTimestamp();
            var (newcomer, _) = await JoinAsync(http, key, "newcomer", -1, totals, ct, newcomerKey);
            double joinCall = Stopwatch.GetElapsedTime(joinWatch.Start).TotalMilliseconds;
            result.JoinChange = await AwaitChangeAsync(joinWatch, options, coordinator, before, joinCall, ct);
            await QuietAsync(totals, coordinator, ct);

            // ---- change 2: the admin renames the newcomer ----
            var renameWatch = new Watch(newcomerKey, "renamed-newcomer", count);
            totals.Watch = renameWatch;
            before = await coordinator.StatsAsync(collect: false, ct);
            renameWatch.Start = Stopwatch.GetTimestamp();
            using (HttpResponseMessage renamed = await coordinator.Admin.PatchAsJsonAsync($"api/v1/nodes/{newcomer.Id}", new RenameNodeRequest("renamed-newcomer"), Json.Api, ct))
            {
                renamed.EnsureSuccessStatusCode();
            }

            double renameCall = Stopwatch.GetElapsedTime(renameWatch.Start).TotalMilliseconds;
            result.RenameChange = await AwaitChangeAsync(renameWatch, options, coordinator, before, renameCall, ct);
            totals.Watch = null;
            result.CoordinatorEnd = await coordinator.StatsAsync(collect: false, ct);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            notes.Add($"connecting the map streams stopped by --phase-timeout {options.PhaseTimeoutSeconds} s: {totals.Snapshots} snapshots of {count}");
            result.StreamBytes = totals.Bytes;
            result.StreamMessages = totals.Messages;
        }
        finally
        {
            totals.Watch = null;
        }

        var (clientUser1, clientSystem1) = Rusage.Read();
        result.ClientCpuSeconds = clientUser1 + clientSystem1 - clientUser0 - clientSystem0;
        result.LoadAverageAfter = LoadAverage.Read();
        result.Notes = notes;
        return result;
    }

    private static async Task<ChangeResult> AwaitChangeAsync(Watch watch, BenchOptions options, CoordinatorProcess coordinator, CoordinatorStats before, double callMs, CancellationToken ct)
    {
        bool complete = true;
        try
        {
            await watch.All.WaitAsync(TimeSpan.FromSeconds(options.ChangeTimeoutSeconds), ct);
        }
        catch (TimeoutException)
        {
            complete = false;
        }

        double total = Stopwatch.GetElapsedTime(watch.Start).TotalMilliseconds;
        CoordinatorStats after = await coordinator.StatsAsync(collect: false, ct);
        return new ChangeResult(
            watch.Count,
            complete,
            callMs,
            Summary.Of(watch.LatenciesMs()),
            complete ? watch.LatenciesMs().Max() : total,
            after.CpuSeconds - before.CpuSeconds,
            after.AllocatedBytes - before.AllocatedBytes);
    }

    private static async Task<(SimNode Node, long Bytes)> JoinAsync(HttpClient http, string authKey, string hostname, int index, SimTotals totals, CancellationToken ct, string? nodeKey = null)
    {
        string key = nodeKey ?? RandomNodeKeys.Next();
        for (int attempt = 0; ; attempt++)
        {
            using HttpResponseMessage r = await http.PostAsJsonAsync("api/v1/join", new JoinRequest(authKey, key, hostname, ["127.0.0.1:41641"]), Json.Api, ct);
            byte[] body = await r.Content.ReadAsByteArrayAsync(ct);
            if (r.StatusCode == HttpStatusCode.OK)
            {
                var (id, token) = ParseJoin(body);
                return (new SimNode(index, key, id, token, totals), body.Length);
            }

            if (attempt >= 3 || (int)r.StatusCode < 500)
            {
                throw new BenchFailedException($"join of {hostname} answered {(int)r.StatusCode}: {System.Text.Encoding.UTF8.GetString(body.AsSpan(0, Math.Min(body.Length, 300)))}");
            }
        }
    }

    /// <summary>The node id and token of a JoinResponse; the map in it is read through (well-formedness) but not kept.</summary>
    private static (long Id, string Token) ParseJoin(ReadOnlySpan<byte> json)
    {
        var r = new Utf8JsonReader(json);
        long id = -1;
        string? token = null;
        r.Read();
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.ValueTextEquals("nodeToken"u8))
            {
                r.Read();
                token = r.GetString();
            }
            else if (r.ValueTextEquals("self"u8))
            {
                r.Read();
                while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                {
                    bool isId = r.ValueTextEquals("id"u8);
                    r.Read();
                    if (isId)
                    {
                        id = r.GetInt64();
                    }
                    else
                    {
                        r.Skip();
                    }
                }
            }
            else
            {
                r.Read();
                r.Skip();
            }
        }

        return id >= 0 && token is not null ? (id, token) : throw new BenchFailedException("a join answer without self.id or nodeToken");
    }

    /// <summary>Joins per second in each tenth of the nodes (in the order they finished).</summary>
    private static double[] RatesByTenth(long[] joinedAt, long start)
    {
        long[] done = [.. joinedAt.Where(t => t != 0).Order()];
        var rates = new List<double>();
        int tenth = Math.Max(1, done.Length / 10);
        long from = start;
        for (int i = tenth - 1; i < done.Length; i += tenth)
        {
            rates.Add(Math.Round(tenth / Stopwatch.GetElapsedTime(from, done[i]).TotalSeconds, 1));
            from = done[i];
        }

        return [.. rates];
    }

    /// <summary>Waits until no map message has arrived for a second and the coordinator's map version has not moved.</summary>
    private static async Task QuietAsync(SimTotals totals, CoordinatorProcess coordinator, CancellationToken ct)
    {
        long version = -1;
        while (true)
        {
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            long v = (await coordinator.HealthAsync(ct)).Version;
            if (v == version && Stopwatch.GetElapsedTime(totals.LastMessage) > TimeSpan.FromSeconds(1))
            {
                return;
            }

            version = v;
        }
    }

    private static async Task UntilAsync(Func<bool> condition, CancellationToken ct)
    {
        while (!condition())
        {
            await Task.Delay(50, ct);
        }
    }
}

/// <summary>One change: how many nodes got it, how long each took (ms from the API call), the coordinator's cost.</summary>
internal sealed record ChangeResult(int Received, bool Complete, double ApiCallMs, Summary PerNodeMs, double TotalMs, double CoordinatorCpuSeconds, long CoordinatorAllocatedBytes);

internal sealed class FanoutResult
{
    public int Nodes { get; set; }

    public int Joined { get; set; }

    public double JoinSeconds { get; set; }

    public double JoinRate { get; set; }

    public double[] JoinRateByTenth { get; set; } = [];

    public long JoinResponseBytes { get; set; }

    public double JoinCpuSeconds { get; set; }

    public double ConnectSeconds { get; set; }

    public double SnapshotsSeconds { get; set; }

    public double SettleSeconds { get; set; }

    public long StreamBytes { get; set; }

    public long StreamMessages { get; set; }

    public double ConnectCpuSeconds { get; set; }

    public ChangeResult? JoinChange { get; set; }

    public ChangeResult? RenameChange { get; set; }

    public CoordinatorStats? CoordinatorIdle { get; set; }

    public CoordinatorStats? CoordinatorConnected { get; set; }

    public CoordinatorStats? CoordinatorConnectedAfterGc { get; set; }

    public CoordinatorStats? CoordinatorEnd { get; set; }

    public double ClientCpuSeconds { get; set; }

    public double LoadAverageBefore { get; set; }

    public double LoadAverageAfter { get; set; }

    public IReadOnlyList<string> Notes { get; set; } = [];
}

/// <summary>Random node keys for simulated nodes: 32 random bytes with the top bit clear, canonical (the coordinator refuses non-canonical and small-order keys; a random value below 2^255 is neither, but for a chance of 2^-250).</summary>
internal static class RandomNodeKeys
{
    public static string Next()
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        key[31] &= 0x7f;
        return Convert.ToBase64String(key);
    }
}
