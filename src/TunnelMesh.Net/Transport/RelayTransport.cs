using System.Buffers;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.WebSockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace TunnelMesh.Net.Transport;

/// <summary>Options of a <see cref="RelayTransport"/>.</summary>
internal sealed class RelayTransportOptions
{
    /// <summary>The coordinator's relay endpoint (<c>ws</c>, <c>wss</c>, <c>http</c> or <c>https</c>). Required.</summary>
    public Uri? Url { get; set; }

    /// <summary>The node's bearer token for the relay. Default none (the relay will refuse).</summary>
    public string? Token { get; set; }

    /// <summary>Reads the current token at each (re)connect; wins over <see cref="Token"/> (a node in control mode gets a new token at each join).</summary>
    public Func<string?>? TokenProvider { get; set; }

    /// <summary>Frames waiting for the WebSocket; more are dropped and counted.</summary>
    /// <remarks>Default 512.</remarks>
    public int SendQueueCapacity { get; set; } = 512;

    /// <summary>First wait before reconnecting; doubles per failure up to <see cref="MaxReconnectDelay"/>.</summary>
    /// <remarks>Default 100 ms.</remarks>
    public TimeSpan MinReconnectDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest wait before reconnecting.</summary>
    /// <remarks>Default 10 s.</remarks>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The pool received frames go into. Default <see cref="PacketBufferPool.Shared"/>.</summary>
    public PacketBufferPool? Pool { get; set; }

    /// <summary>The node's drop counters (send failures count as <see cref="DropReason.SendFailed"/>).</summary>
    public DropCounters? Drops { get; set; }

    /// <summary>The clock for reconnect delays. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider? Time { get; set; }
}

/// <summary>
/// WireGuard messages through the coordinator's relay (DERP-like): one WebSocket to the relay,
/// authenticated with the node's bearer token; peers are addressed by public key. A relay path is an
/// <see cref="Endpoint"/> made by <see cref="EndpointFor"/> (the key's slot in a
/// <see cref="RelayPeerTable"/>). Frames (docs/RELAY.md): to the relay, 32 bytes of destination key then
/// the message; from the relay, 32 bytes of source key then the message; one binary WebSocket message each.
/// </summary>
/// <remarks>
/// <see cref="Send"/> copies each message into a pooled array on a bounded queue and returns at once
/// (a full queue drops and counts, as a full UDP socket buffer would); one loop writes the queue to the
/// socket. A receive loop delivers each frame as a datagram whose data starts at
/// <see cref="UdpTransport.ReceiveOffset"/>, as UDP's do, so it can be decrypted and forwarded in place.
/// The connection is re-established with exponential backoff and jitter; frames queued meanwhile wait.
/// </remarks>
internal sealed class RelayTransport : IDatagramTransport
{
    /// <summary>Length of the key in front of every frame.</summary>
    public const int KeyLength = 32;

    /// <summary>Largest message carried (a UDP datagram's payload limit rounded up).</summary>
    public const int MaxMessageSize = 65535;

    private const int FrameStart = UdpTransport.ReceiveOffset - KeyLength;

    private readonly Uri _url;
    private readonly Func<string?> _token;
    private readonly PacketBufferPool _pool;
    private readonly TransportCounters _counters;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _minDelay;
    private readonly TimeSpan _maxDelay;
    private readonly RelayPeerTable _peers = new();
    private readonly Channel<Frame> _queue;
    private readonly CancellationTokenSource _stop = new();
    private readonly PacketBuffer[] _delivery = new PacketBuffer[1];
    private IDatagramReceiver? _receiver;
    private ClientWebSocket? _current;
    private HashSet<IPAddress> _addresses = [];
    private Task? _loop;
    private int _connected;
    private long _connections;
    private int _disposed;

    public RelayTransport(RelayTransportOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var url = options.Url ?? throw new ArgumentException("The relay URL is required.", nameof(options));
        _url = ToWebSocketUri(url);
        string? fixedToken = options.Token;
        _token = options.TokenProvider ?? (() => fixedToken);
        _pool = options.Pool ?? PacketBufferPool.Shared;
        _counters = new TransportCounters(options.Drops);
        _time = options.Time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _minDelay = options.MinReconnectDelay;
        _maxDelay = options.MaxReconnectDelay;
        ArgumentOutOfRangeException.ThrowIfLessThan(options.SendQueueCapacity, 1);
        _queue = Channel.CreateBounded<Frame>(new BoundedChannelOptions(options.SendQueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite then fails instead of waiting: we drop
        });
    }

    /// <inheritdoc/>
    public int LocalPort => 0;

    /// <summary>Whether the WebSocket to the relay is open now.</summary>
    public bool IsConnected => Volatile.Read(ref _connected) != 0;

    /// <summary>Connections established so far (the first one and every reconnect).</summary>
    public long Connections => Interlocked.Read(ref _connections);

    /// <summary>The counters so far (messages, without the 32-byte key).</summary>
    public TransportStatistics Statistics => _counters.Snapshot();

    /// <summary>The relay path to the node with <paramref name="key"/>.</summary>
    /// <exception cref="InvalidOperationException">The table of relay peers is full.</exception>
    public Endpoint EndpointFor(NodePublicKey key) =>
        _peers.TryGetOrAdd(RelayKey.From(key), out uint slot)
            ? Endpoint.ForRelay(slot)
            : throw new InvalidOperationException("The relay transport's peer table is full.");

    /// <inheritdoc/>
    public void Start(IDatagramReceiver receiver)
    {
        ArgumentNullException.ThrowIfNull(receiver);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Interlocked.CompareExchange(ref _receiver, receiver, null) is not null)
        {
            throw new InvalidOperationException("The transport is already started.");
        }

        _addresses = Control.NetworkChangeSignal.LocalAddresses();
        NetworkChange.NetworkAddressChanged += OnNetworkAddressChanged;
        _loop = Task.Run(() => RunAsync(_stop.Token));
    }

    /// <summary>
    /// One of this host's addresses went away (a new DHCP lease, another network): the relay's TCP
    /// connection may have been bound to it, and then nothing would tell us it is dead before the
    /// keepalive timeout. Reconnect at once from the addresses the host has now.
    /// </summary>
    private void OnNetworkAddressChanged(object? sender, EventArgs e)
    {
        var now = Control.NetworkChangeSignal.LocalAddresses();
        var before = Interlocked.Exchange(ref _addresses, now);
        if (!before.IsSubsetOf(now) && Volatile.Read(ref _current) is { } socket)
        {
            RelayTransportLog.AddressLost(_logger, _url);
            socket.Abort(); // the receive loop ends and RunAsync reconnects
        }
    }

    /// <summary>
    /// Drops the current connection and reconnects at once: the node learned that its public address
    /// changed (a NAT in front of it was renumbered), so the connection's NAT state is gone and the
    /// keepalive timeout would be the first to notice.
    /// </summary>
    internal void Reconnect()
    {
        if (Volatile.Read(ref _current) is { } socket)
        {
            RelayTransportLog.PublicAddressMoved(_logger, _url);
            socket.Abort();
        }
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<PacketBuffer> batch)
    {
        foreach (var datagram in batch)
        {
            var endpoint = datagram.Endpoint;
            if (!endpoint.IsRelay || !_peers.TryGetKey(endpoint.RelaySlot, out var key) || datagram.Length > MaxMessageSize
                || Volatile.Read(ref _disposed) != 0)
            {
                _counters.AddSendFailures(1);
                continue;
            }

            int length = KeyLength + datagram.Length;
            byte[] array = ArrayPool<byte>.Shared.Rent(length);
            key.Write(array);
            datagram.Span.CopyTo(array.AsSpan(KeyLength));
            if (!_queue.Writer.TryWrite(new Frame(array, length)))
            {
                ArrayPool<byte>.Shared.Return(array);
                _counters.AddSendFailures(1);
            }
        }
    }

    /// <summary>Closes the WebSocket, stops the loops and drops what is queued. Safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        NetworkChange.NetworkAddressChanged -= OnNetworkAddressChanged;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false); // RunAsync catches everything
        }

        _queue.Writer.TryComplete();
        while (_queue.Reader.TryRead(out var frame))
        {
            ArrayPool<byte>.Shared.Return(frame.Array);
        }

        _stop.Dispose();
    }

    private async Task RunAsync(CancellationToken stop)
    {
        var delay = _minDelay;
        while (!stop.IsCancellationRequested)
        {
            using var socket = new ClientWebSocket();
            if (_token() is { } token)
            {
                socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
            }

            // A ping every 15 s that must be answered within 10 s: a connection that died without a FIN or RST
            // (a NAT that forgot it, a lost address) is noticed and replaced instead of swallowing frames.
            socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(15);
            socket.Options.KeepAliveTimeout = TimeSpan.FromSeconds(10);
            using var connection = CancellationTokenSource.CreateLinkedTokenSource(stop);
            Task? sending = null;
            try
            {
                await socket.ConnectAsync(_url, stop).ConfigureAwait(false);
                Interlocked.Increment(ref _connections);
                Volatile.Write(ref _connected, 1);
                RelayTransportLog.Connected(_logger, _url);
                delay = _minDelay;
                Volatile.Write(ref _current, socket);
                sending = SendLoopAsync(socket, connection.Token);
                await ReceiveLoopAsync(socket, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
#pragma warning disable CA1031 // any failure of the connection means: reconnect
            catch (Exception ex)
#pragma warning restore CA1031
            {
                RelayTransportLog.ConnectionFailed(_logger, _url, ex.GetType().Name, ex.Message);
            }
            finally
            {
                Volatile.Write(ref _connected, 0);
                Volatile.Write(ref _current, null);
                await connection.CancelAsync().ConfigureAwait(false);
                socket.Abort();
                if (sending is not null)
                {
                    await sending.ConfigureAwait(false); // never throws
                }
            }

            if (stop.IsCancellationRequested)
            {
                break;
            }

            // Full jitter on the upper half: spreads a mesh's reconnects after a coordinator restart.
            var wait = delay / 2 + TimeSpan.FromTicks(Random.Shared.NextInt64(Math.Max(1, delay.Ticks / 2)));
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _maxDelay.Ticks));
            try
            {
                await Task.Delay(wait, _time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private async Task SendLoopAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (reader.TryRead(out var frame))
                {
                    try
                    {
                        await socket.SendAsync(frame.Array.AsMemory(0, frame.Length), WebSocketMessageType.Binary, true, cancellationToken).ConfigureAwait(false);
                        _counters.AddSent(1, frame.Length - KeyLength);
                    }
                    catch
                    {
                        _counters.AddSendFailures(1);
                        throw;
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(frame.Array);
                    }
                }
            }
        }
#pragma warning disable CA1031 // the receive loop notices a broken socket and reconnects
        catch (Exception)
#pragma warning restore CA1031
        {
            socket.Abort(); // wake the receive loop
        }
    }

    private async Task ReceiveLoopAsync(ClientWebSocket socket, CancellationToken stop)
    {
        var buffer = _pool.Rent();
        try
        {
            int limit = Math.Min(buffer.Array.Length - FrameStart, KeyLength + MaxMessageSize);
            while (true)
            {
                int count = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (count == limit)
                    {
                        throw new WebSocketException(WebSocketError.InvalidMessageType, "The relay sent a frame larger than a WireGuard message.");
                    }

                    result = await socket.ReceiveAsync(buffer.Array.AsMemory(FrameStart + count, limit - count), stop).ConfigureAwait(false);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        RelayTransportLog.Closed(_logger, _url, socket.CloseStatus, socket.CloseStatusDescription);
                        return;
                    }

                    count += result.Count;
                }
                while (!result.EndOfMessage);

                if (result.MessageType != WebSocketMessageType.Binary || count <= KeyLength
                    || !_peers.TryGetOrAdd(RelayKey.Read(buffer.Array.AsSpan(FrameStart, KeyLength)), out uint slot))
                {
                    _counters.AddReceiveError();
                    continue;
                }

                buffer.Offset = FrameStart + KeyLength;
                buffer.Length = count - KeyLength;
                buffer.Endpoint = Endpoint.ForRelay(slot);
                _counters.AddReceived(1, buffer.Length);
                Deliver(buffer);
                buffer = _pool.Rent();
            }
        }
        finally
        {
            buffer.Return();
        }
    }

    private void Deliver(PacketBuffer datagram)
    {
        _delivery[0] = datagram;
        try
        {
            _receiver!.OnDatagrams(_delivery);
        }
#pragma warning disable CA1031 // a receiver must not throw; the loop survives one that does
        catch (Exception)
#pragma warning restore CA1031
        {
            _counters.AddReceiveError();
        }
        finally
        {
            _delivery[0] = null!;
        }
    }

    private static Uri ToWebSocketUri(Uri url)
    {
        if (!url.IsAbsoluteUri)
        {
            throw new ArgumentException($"The relay URL '{url}' is not absolute.", nameof(url));
        }

        string? scheme = url.Scheme switch
        {
            "ws" or "wss" => url.Scheme,
            "http" => "ws",
            "https" => "wss",
            _ => null,
        };
        if (scheme is null)
        {
            throw new ArgumentException($"The relay URL '{url}' is not ws, wss, http or https.", nameof(url));
        }

        return new UriBuilder(url) { Scheme = scheme, Port = url.IsDefaultPort ? -1 : url.Port }.Uri;
    }

    private readonly record struct Frame(byte[] Array, int Length);
}

/// <summary>Source-generated log messages of the relay transport (no token is ever logged).</summary>
internal static partial class RelayTransportLog
{
    [LoggerMessage(301, LogLevel.Information, "Relay connected: {Url}")]
    public static partial void Connected(ILogger logger, Uri url);

    [LoggerMessage(302, LogLevel.Warning, "Relay connection to {Url} failed or broke ({Error}: {Message}); reconnecting")]
    public static partial void ConnectionFailed(ILogger logger, Uri url, string error, string message);

    [LoggerMessage(303, LogLevel.Information, "Relay {Url} closed the connection ({Status} {Description}); reconnecting")]
    public static partial void Closed(ILogger logger, Uri url, WebSocketCloseStatus? status, string? description);

    [LoggerMessage(304, LogLevel.Information, "An address of this host went away; reconnecting to the relay {Url}")]
    public static partial void AddressLost(ILogger logger, Uri url);

    [LoggerMessage(305, LogLevel.Information, "The node's public address moved; reconnecting to the relay {Url}")]
    public static partial void PublicAddressMoved(ILogger logger, Uri url);
}
