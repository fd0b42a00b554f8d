using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net.WebSockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace TunnelMesh.Net.Server.Relay;

/// <summary>
/// The coordinator's relay (DERP-like): joined nodes hold one WebSocket each, and the hub forwards
/// binary frames between them by public key. It never decrypts: the payloads are WireGuard messages,
/// end-to-end encrypted between the nodes. Frames (docs/RELAY.md): from a node, 32 bytes of
/// destination key then the message; to a node, 32 bytes of source key (the sender's authenticated
/// key, never taken from the frame) then the message.
/// </summary>
/// <remarks>
/// <para>
/// Each connection has a bounded send queue drained by its own loop, so a slow receiver never
/// slows the sender: a frame to a full queue is dropped and counted, as are frames to keys with no
/// connection here that no other coordinator replica holds either (<see cref="ReplicaRelay"/> forwards
/// the others). A second connection with the same key replaces the first (which is closed with 1008,
/// "replaced"). A frame over <see cref="MeshRelayOptions.MaxMessageSize"/> closes its connection with 1009.
/// </para>
/// <para>
/// Metrics on the meter <see cref="MeterName"/>: <c>tunnelmesh.relay.connections</c>,
/// <c>tunnelmesh.relay.forwarded</c> and <c>tunnelmesh.relay.forwarded.bytes</c>,
/// <c>tunnelmesh.relay.dropped</c> (tag <c>reason</c>: unknown_destination, queue_full, malformed, oversize),
/// <c>tunnelmesh.relay.replaced</c> and <c>tunnelmesh.relay.refused</c>.
/// </para>
/// </remarks>
public sealed class RelayHub : IDisposable
{
    /// <summary>Name of the <see cref="Meter"/> the hub publishes on.</summary>
    public const string MeterName = "TunnelMesh.Net.Server.Relay";

    /// <summary>Length of the key in front of every frame.</summary>
    public const int KeyLength = 32;

    private static readonly KeyValuePair<string, object?> ReasonUnknown = new("reason", "unknown_destination");
    private static readonly KeyValuePair<string, object?> ReasonQueueFull = new("reason", "queue_full");
    private static readonly KeyValuePair<string, object?> ReasonMalformed = new("reason", "malformed");
    private static readonly KeyValuePair<string, object?> ReasonOversize = new("reason", "oversize");

    private readonly ConcurrentDictionary<RelayKey, Connection> _connections = new();
    private readonly MeshRelayOptions _options;
    private readonly ILogger _logger;
    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _forwarded;
    private readonly Counter<long> _forwardedBytes;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _replacedCounter;
    private readonly Counter<long> _refusedCounter;
    private long _framesForwarded;
    private long _bytesForwarded;
    private long _unknownDestination;
    private long _queueFull;
    private long _malformed;
    private long _oversize;
    private long _replaced;
    private long _refused;

    /// <summary>Creates a hub (DI builds one for <c>MapMeshRelay</c>).</summary>
    /// <param name="options">The limits.</param>
    /// <param name="logger">Where the hub logs; none by default.</param>
    /// <param name="meterFactory">Where its meter comes from; a meter of its own by default.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range; the exception names it.</exception>
    public RelayHub(IOptions<MeshRelayOptions>? options = null, ILogger<RelayHub>? logger = null, IMeterFactory? meterFactory = null)
    {
        _options = options?.Value ?? new MeshRelayOptions();
        _options.Validate();
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _meter.CreateObservableUpDownCounter("tunnelmesh.relay.connections", () => _connections.Count, "{connection}", "Nodes connected to the relay");
        _forwarded = _meter.CreateCounter<long>("tunnelmesh.relay.forwarded", "{frame}", "Frames forwarded between nodes");
        _forwardedBytes = _meter.CreateCounter<long>("tunnelmesh.relay.forwarded.bytes", "By", "Message bytes forwarded (without the 32-byte key)");
        _dropped = _meter.CreateCounter<long>("tunnelmesh.relay.dropped", "{frame}", "Frames dropped, by reason");
        _replacedCounter = _meter.CreateCounter<long>("tunnelmesh.relay.replaced", "{connection}", "Connections replaced by a newer one with the same key");
        _refusedCounter = _meter.CreateCounter<long>("tunnelmesh.relay.refused", "{request}", "Requests refused as unauthenticated");
    }

    /// <summary>Nodes connected now.</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>A snapshot of the hub's counters.</summary>
    internal RelayHubStatistics Statistics => new(
        Interlocked.Read(ref _framesForwarded),
        Interlocked.Read(ref _bytesForwarded),
        Interlocked.Read(ref _unknownDestination),
        Interlocked.Read(ref _queueFull),
        Interlocked.Read(ref _malformed),
        Interlocked.Read(ref _oversize),
        Interlocked.Read(ref _replaced),
        Interlocked.Read(ref _refused));

    internal MeshRelayOptions Options => _options;

    /// <summary>The replica relay, when this coordinator runs as one of several replicas; set once at start.</summary>
    internal IRelayReplicaBridge? Replicas { get; set; }

    /// <summary>The keys of the nodes connected to this hub now.</summary>
    internal IEnumerable<RelayKey> LocalKeys => _connections.Keys;

    internal ILogger Logger => _logger;

    /// <summary>Whether a node with <paramref name="publicKey"/> is connected now.</summary>
    public bool IsConnected(NodePublicKey publicKey) => _connections.ContainsKey(RelayKey.From(publicKey));

    internal bool IsConnected(RelayKey key) => _connections.ContainsKey(key);

    /// <summary>Counts a refused (unauthenticated) request.</summary>
    internal void CountRefused()
    {
        Interlocked.Increment(ref _refused);
        _refusedCounter.Add(1);
    }

    /// <summary>Serves one accepted WebSocket of an authenticated node until it closes.</summary>
    internal async Task RunAsync(RelayIdentity identity, WebSocket socket, CancellationToken cancellationToken)
    {
        var key = RelayKey.From(identity.PublicKey);
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var connection = new Connection(identity, key, socket, _options.SendQueueCapacity, aborted);
        Connection? previous = null;
        _connections.AddOrUpdate(key, connection, (_, old) =>
        {
            previous = old;
            return connection;
        });
        if (previous is not null)
        {
            Interlocked.Increment(ref _replaced);
            _replacedCounter.Add(1);
            RelayLog.Replaced(_logger, identity.NodeId, identity.PublicKey);
            previous.RequestClose(WebSocketCloseStatus.PolicyViolation, "replaced by a newer connection with the same key", _options.CloseTimeout);
        }
        else
        {
            RelayLog.Connected(_logger, identity.NodeId, identity.PublicKey);
        }

        Replicas?.Attached(key);

        var sending = SendLoopAsync(connection, aborted.Token);
        try
        {
            await ReceiveLoopAsync(connection, aborted.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
            RelayLog.ConnectionFailed(_logger, identity.NodeId, ex);
        }
        finally
        {
            // Only our own registration: a newer connection with the key stays.
            if (_connections.TryRemove(KeyValuePair.Create(key, connection)))
            {
                Replicas?.Detached(key);
            }

            connection.RequestClose(WebSocketCloseStatus.NormalClosure, null, _options.CloseTimeout);
            await sending.ConfigureAwait(false);
            connection.DrainQueue();
            RelayLog.Disconnected(_logger, identity.NodeId, identity.PublicKey, connection.FramesReceived);
        }
    }

    private async Task ReceiveLoopAsync(Connection connection, CancellationToken cancellationToken)
    {
        var socket = connection.Socket;
        int limit = KeyLength + _options.MaxMessageSize;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(limit);
        try
        {
            bool discarding = false; // after an oversize frame: read on only to see the close
            while (true)
            {
                int count = 0;
                bool oversize = false;
                ValueWebSocketReceiveResult result;
                do
                {
                    var target = oversize || discarding ? buffer.AsMemory(0, limit) : buffer.AsMemory(count, limit - count);
                    result = await socket.ReceiveAsync(target, cancellationToken).ConfigureAwait(false);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        return;
                    }

                    if (!oversize && !discarding)
                    {
                        count += result.Count;
                        oversize = count == limit && !result.EndOfMessage;
                    }
                }
                while (!result.EndOfMessage);

                if (discarding)
                {
                    continue;
                }

                if (oversize)
                {
                    Drop(ref _oversize, ReasonOversize);
                    RelayLog.Oversize(_logger, connection.Identity.NodeId, connection.Identity.PublicKey, _options.MaxMessageSize);
                    connection.RequestClose(WebSocketCloseStatus.MessageTooBig, $"a frame carries at most {_options.MaxMessageSize} bytes", _options.CloseTimeout);
                    discarding = true;
                    continue;
                }

                connection.FramesReceived++;
                if (result.MessageType != WebSocketMessageType.Binary || count <= KeyLength)
                {
                    Drop(ref _malformed, ReasonMalformed);
                    continue;
                }

                Forward(connection, buffer.AsSpan(0, count));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // frame = destination key + message; what goes out is the sender's key + the same message.
    private void Forward(Connection from, ReadOnlySpan<byte> frame)
    {
        var destination = RelayKey.Read(frame);
        var message = frame[KeyLength..];
        switch (DeliverLocal(destination, from.Key, message))
        {
            case RelayDelivery.Queued:
                return;
            case RelayDelivery.QueueFull:
                Drop(ref _queueFull, ReasonQueueFull);
                return;
            default:
                if (Replicas?.TryForward(destination, from.Key, message) != true)
                {
                    Drop(ref _unknownDestination, ReasonUnknown);
                }

                return;
        }
    }

    /// <summary>
    /// Queues <paramref name="message"/> from <paramref name="source"/> for the node with
    /// <paramref name="destination"/> if it is attached here; a queued frame is counted as forwarded,
    /// the caller counts the rest.
    /// </summary>
    internal RelayDelivery DeliverLocal(RelayKey destination, RelayKey source, ReadOnlySpan<byte> message)
    {
        if (!_connections.TryGetValue(destination, out var to))
        {
            return RelayDelivery.UnknownDestination;
        }

        int length = KeyLength + message.Length;
        byte[] copy = ArrayPool<byte>.Shared.Rent(length);
        source.Write(copy);
        message.CopyTo(copy.AsSpan(KeyLength));
        if (!to.TryEnqueue(new Frame(copy, length)))
        {
            ArrayPool<byte>.Shared.Return(copy);
            return RelayDelivery.QueueFull;
        }

        Interlocked.Increment(ref _framesForwarded);
        Interlocked.Add(ref _bytesForwarded, message.Length);
        _forwarded.Add(1);
        _forwardedBytes.Add(message.Length);
        return RelayDelivery.Queued;
    }

    private void Drop(ref long counter, KeyValuePair<string, object?> reason)
    {
        Interlocked.Increment(ref counter);
        _dropped.Add(1, reason);
    }

    private static async Task SendLoopAsync(Connection connection, CancellationToken cancellationToken)
    {
        var socket = connection.Socket;
        var reader = connection.Queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (reader.TryRead(out var frame))
                {
                    try
                    {
                        await socket.SendAsync(frame.Array.AsMemory(0, frame.Length), WebSocketMessageType.Binary, true, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(frame.Array);
                    }
                }
            }

            // The queue was completed: close (the receive loop then sees the peer's close, or the timeout aborts it).
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await socket.CloseOutputAsync(connection.CloseStatus, connection.CloseDescription, cancellationToken).ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // a broken socket ends the connection; the receive loop notices
        catch (Exception)
#pragma warning restore CA1031
        {
            socket.Abort();
        }
    }

    /// <summary>Disposes the hub's own meter (one from a meter factory is the factory's).</summary>
    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private readonly record struct Frame(byte[] Array, int Length);

    private sealed class Connection(RelayIdentity identity, RelayKey key, WebSocket socket, int capacity, CancellationTokenSource aborted)
    {
        private int _closing;

        public RelayIdentity Identity { get; } = identity;

        public RelayKey Key { get; } = key;

        public WebSocket Socket { get; } = socket;

        public Channel<Frame> Queue { get; } = Channel.CreateBounded<Frame>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full: the hub drops
        });

        public long FramesReceived { get; set; }

        public WebSocketCloseStatus CloseStatus { get; private set; } = WebSocketCloseStatus.NormalClosure;

        public string? CloseDescription { get; private set; }

        public bool TryEnqueue(Frame frame) => Queue.Writer.TryWrite(frame);

        /// <summary>Closes once: the send loop sends what is queued, then the close; the connection is aborted after <paramref name="timeout"/>.</summary>
        public void RequestClose(WebSocketCloseStatus status, string? description, TimeSpan timeout)
        {
            if (Interlocked.Exchange(ref _closing, 1) != 0)
            {
                return;
            }

            CloseStatus = status;
            CloseDescription = description;
            Queue.Writer.TryComplete();
            try
            {
                aborted.CancelAfter(timeout);
            }
            catch (ObjectDisposedException)
            {
            }
        }

        public void DrainQueue()
        {
            while (Queue.Reader.TryRead(out var frame))
            {
                ArrayPool<byte>.Shared.Return(frame.Array);
            }
        }
    }
}

/// <summary>A snapshot of a <see cref="RelayHub"/>'s counters.</summary>
internal readonly record struct RelayHubStatistics(
    long FramesForwarded,
    long BytesForwarded,
    long DroppedUnknownDestination,
    long DroppedQueueFull,
    long DroppedMalformed,
    long DroppedOversize,
    long Replaced,
    long Refused);
