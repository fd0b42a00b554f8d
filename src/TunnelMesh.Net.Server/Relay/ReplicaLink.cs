using System.Buffers;
using System.Net.WebSockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Server.Relay;

/// <summary>
/// This replica's outgoing link to one other replica: a WebSocket to its replica-link endpoint,
/// opened with the cluster secret, that carries frames of destination key, source key and message
/// (docs/RELAY.md). Frames wait in a bounded queue; when it is full a frame is dropped and counted
/// (the sender never waits). A connection attempt gives up after 10 s. The link reconnects after a failure (1 s, doubling up to 10 s) and keeps
/// the queued frames meanwhile. It only sends: the other replica's link to this one carries the other way.
/// </summary>
internal sealed class ReplicaLink : IAsyncDisposable
{
    /// <summary>The header that names the dialling replica (for logs only; the secret is what authenticates).</summary>
    public const string ReplicaHeader = "X-TunnelMesh-Replica";

    private const int HeaderLength = 2 * RelayKey.Length;
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LastBackoff = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    private readonly Channel<Frame> _queue;
    private readonly string _selfId;
    private readonly string _secret;
    private readonly TimeSpan _keepAlive;
    private readonly ReplicaRelayMetrics _metrics;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Task? _run;
    private int _connected;

    public ReplicaLink(string replicaId, Uri url, string selfId, string secret, int capacity, TimeSpan keepAlive, ReplicaRelayMetrics metrics, ILogger logger)
    {
        ReplicaId = replicaId;
        Url = url;
        _selfId = selfId;
        _secret = secret;
        _keepAlive = keepAlive;
        _metrics = metrics;
        _logger = logger;
        _queue = Channel.CreateBounded<Frame>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full: the frame is dropped
        });
    }

    /// <summary>The replica at the other end.</summary>
    public string ReplicaId { get; }

    /// <summary>Its replica-link endpoint.</summary>
    public Uri Url { get; }

    /// <summary>Whether the WebSocket is open now.</summary>
    public bool Connected => Volatile.Read(ref _connected) != 0;

    /// <summary>Frames waiting now.</summary>
    public int Queued => _queue.Reader.Count;

    /// <summary>Starts connecting and sending (once).</summary>
    public void Start() => _run ??= RunAsync(_stop.Token);

    /// <summary>Queues a frame; false (and counted) when the queue is full.</summary>
    public bool TryEnqueue(RelayKey destination, RelayKey source, ReadOnlySpan<byte> message)
    {
        int length = HeaderLength + message.Length;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        destination.Write(buffer);
        source.Write(buffer.AsSpan(RelayKey.Length));
        message.CopyTo(buffer.AsSpan(HeaderLength));
        if (!_queue.Writer.TryWrite(new Frame(buffer, length)))
        {
            ArrayPool<byte>.Shared.Return(buffer);
            _metrics.DroppedQueueFull();
            return false;
        }

        _metrics.Forwarded(message.Length);
        return true;
    }

    private async Task RunAsync(CancellationToken stop)
    {
        TimeSpan backoff = FirstBackoff;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                using var socket = new ClientWebSocket();
                socket.Options.SetRequestHeader("Authorization", "Bearer " + _secret);
                socket.Options.SetRequestHeader(ReplicaHeader, _selfId);
                socket.Options.KeepAliveInterval = _keepAlive;
                using (var connecting = CancellationTokenSource.CreateLinkedTokenSource(stop))
                {
                    connecting.CancelAfter(ConnectTimeout); // a replica that accepts but never answers must not hold the link
                    await socket.ConnectAsync(Url, connecting.Token).ConfigureAwait(false);
                }

                RelayLog.LinkConnected(_logger, ReplicaId, Url);
                backoff = FirstBackoff;
                Interlocked.Exchange(ref _connected, 1);
                _metrics.LinkUp();
                try
                {
                    await PumpAsync(socket, stop).ConfigureAwait(false);
                }
                finally
                {
                    Interlocked.Exchange(ref _connected, 0);
                    _metrics.LinkDown();
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // whatever broke this attempt, the link tries again after the backoff
            catch (Exception ex)
#pragma warning restore CA1031
            {
                RelayLog.LinkFailed(_logger, ReplicaId, Url, ex);
            }

            try
            {
                await Task.Delay(backoff, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, LastBackoff.Ticks));
        }
    }

    // Sends queued frames until the socket fails or closes; a receive runs beside it to see the close.
    private async Task PumpAsync(ClientWebSocket socket, CancellationToken stop)
    {
        using var broken = CancellationTokenSource.CreateLinkedTokenSource(stop);
        Task receiving = ReceiveUntilClosedAsync(socket, broken);
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(broken.Token).ConfigureAwait(false))
            {
                while (reader.TryPeek(out var frame))
                {
                    await socket.SendAsync(frame.Array.AsMemory(0, frame.Length), WebSocketMessageType.Binary, true, broken.Token).ConfigureAwait(false);
                    if (reader.TryRead(out frame))
                    {
                        ArrayPool<byte>.Shared.Return(frame.Array);
                    }
                }
            }
        }
        finally
        {
            await broken.CancelAsync().ConfigureAwait(false);
            socket.Abort();
            await receiving.ConfigureAwait(false);
        }
    }

    private static async Task ReceiveUntilClosedAsync(ClientWebSocket socket, CancellationTokenSource broken)
    {
        byte[] scratch = new byte[256];
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(scratch.AsMemory(), broken.Token).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }
            }
        }
#pragma warning disable CA1031 // any end of the receive side ends the link; the send loop reconnects
        catch (Exception)
#pragma warning restore CA1031
        {
        }

        await broken.CancelAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_run is not null)
        {
            await _run.ConfigureAwait(false);
        }

        _queue.Writer.TryComplete();
        while (_queue.Reader.TryRead(out var frame))
        {
            ArrayPool<byte>.Shared.Return(frame.Array);
        }

        _stop.Dispose();
    }

    private readonly record struct Frame(byte[] Array, int Length);
}
