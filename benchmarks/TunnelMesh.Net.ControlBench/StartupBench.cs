using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace TunnelMesh.Net.ControlBench;

/// <summary>
/// MeshNode.StartAsync to the first byte at a peer: a node "listener" is joined and listening; each
/// run creates a new node (new key, new name), starts it, dials "listener" by name and sends one byte.
/// </summary>
internal static class StartupBench
{
    private const int Port = 7000;

    public static async Task<StartupResult> RunAsync(BenchOptions options, CoordinatorProcess coordinator, CancellationToken ct)
    {
        string key = await coordinator.CreateReusableKeyAsync(ct);
        await using var listener = new MeshNode(new MeshNodeOptions
        {
            ControlUrl = coordinator.BaseUri,
            AuthKey = key,
            Hostname = "listener",
            ListenAddress = IPAddress.Loopback,
        });
        await listener.StartAsync(ct);
        await using MeshTcpListener server = await listener.ListenAsync(Port, ct);
        var arrivals = System.Threading.Channels.Channel.CreateUnbounded<long>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Task accepting = AcceptLoopAsync(server, arrivals.Writer, stop.Token);
        var runs = new List<StartupRun>();
        try
        {
            for (int i = 0; i < options.StartupRuns; i++)
            {
                runs.Add(await OneAsync(coordinator.BaseUri, key, i, arrivals.Reader, ct));
                Console.Error.WriteLine($"  startup run {i + 1}/{options.StartupRuns}: {runs[^1].DeliveredMs:F1} ms (start {runs[^1].StartedMs:F1}, connected {runs[^1].ConnectedMs:F1}, path {runs[^1].Path})");
            }
        }
        finally
        {
            await stop.CancelAsync();
            await accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        return new StartupResult(
            runs.Count,
            Summary.Of(runs.Select(r => r.StartedMs)),
            Summary.Of(runs.Select(r => r.ConnectedMs)),
            Summary.Of(runs.Select(r => r.DeliveredMs)),
            runs);
    }

    private static async Task<StartupRun> OneAsync(Uri control, string key, int index, System.Threading.Channels.ChannelReader<long> arrivals, CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(TimeSpan.FromSeconds(60));
        while (arrivals.TryRead(out _))
        {
        }

        var node = new MeshNode(new MeshNodeOptions
        {
            ControlUrl = control,
            AuthKey = key,
            Hostname = "dialer-" + index.ToString(CultureInfo.InvariantCulture),
            ListenAddress = IPAddress.Loopback,
        });
        await using (node)
        {
            long t0 = Stopwatch.GetTimestamp();
            await node.StartAsync(limit.Token);
            long started = Stopwatch.GetTimestamp();
            await using MeshTcpStream stream = await node.DialAsync("listener", Port, limit.Token);
            long connected = Stopwatch.GetTimestamp();
            await stream.WriteAsync(new byte[] { 42 }, limit.Token);
            await stream.FlushAsync(limit.Token);
            long delivered = await arrivals.ReadAsync(limit.Token);
            string path = node.GetStatus().Peers.FirstOrDefault(p => p.Name == "listener")?.Path.ToString() ?? "?";
            return new StartupRun(
                Stopwatch.GetElapsedTime(t0, started).TotalMilliseconds,
                Stopwatch.GetElapsedTime(t0, connected).TotalMilliseconds,
                Stopwatch.GetElapsedTime(t0, delivered).TotalMilliseconds,
                path);
        }
    }

    /// <summary>Accepts each dialer, reads its one byte and posts the time it arrived.</summary>
    private static async Task AcceptLoopAsync(MeshTcpListener server, System.Threading.Channels.ChannelWriter<long> arrivals, CancellationToken ct)
    {
        var readers = new List<Task>();
        try
        {
            while (!ct.IsCancellationRequested)
            {
                Stream s = await server.AcceptAsync(ct);
                readers.Add(ReadOneAsync(s, arrivals, ct));
            }
        }
        catch (OperationCanceledException)
        {
        }

        await Task.WhenAll(readers).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private static async Task ReadOneAsync(Stream s, System.Threading.Channels.ChannelWriter<long> arrivals, CancellationToken ct)
    {
        await using (s)
        {
            byte[] one = new byte[1];
            if (await s.ReadAsync(one, ct) == 1)
            {
                arrivals.TryWrite(Stopwatch.GetTimestamp());
            }
        }
    }
}

/// <summary>One run, in milliseconds from the StartAsync call.</summary>
internal sealed record StartupRun(double StartedMs, double ConnectedMs, double DeliveredMs, string Path);

internal sealed record StartupResult(int Runs, Summary Started, Summary Connected, Summary Delivered, IReadOnlyList<StartupRun> Each);
