using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Stack.Tcp;

/// <summary>
/// The TCP layer of a node's stack: demultiplexes segments to connections and listeners, answers
/// segments for closed ports with RST (RFC 9293 3.10.7.1), picks ephemeral ports and initial
/// sequence numbers (RFC 6528), and builds the IPv4 packets connections send.
/// </summary>
internal sealed class TcpStack
{
    private const int EphemeralPortFirst = 49152;
    private const int EphemeralPortCount = 65536 - EphemeralPortFirst;

    private readonly NetStack _ip;
    private readonly ConcurrentDictionary<TcpTuple, TcpConnection> _connections = new();
    private readonly ConcurrentDictionary<ushort, TcpListenerCore> _listeners = new();
    private readonly byte[] _isnSecret = RandomNumberGenerator.GetBytes(32);
    private readonly long _epoch;
    private readonly ILogger _logger;
    private int _disposed;

    public TcpStack(NetStack ip, ILogger logger)
    {
        _ip = ip;
        _logger = logger;
        _epoch = ip.Time.GetTimestamp();
    }

    /// <summary>The stack clock: monotonic time since the stack started.</summary>
    public TimeSpan Now => _ip.Time.GetElapsedTime(_epoch);

    public TimeProvider Time => _ip.Time;

    public PacketBufferPool Pool => _ip.Pool;

    /// <summary>
    /// The arrays behind connections' send and receive buffers. A ring returns its array when it
    /// empties (so idle connections hold none) and rents again on the next write, often on another
    /// thread. <see cref="ArrayPool{T}.Shared"/> keeps returned arrays per thread first, so a
    /// rent on the other thread missed and allocated a fresh multi-megabyte array now and then in
    /// the middle of a transfer; this pool has no thread affinity. It keeps at most
    /// <see cref="BufferArraysPerSize"/> arrays of each power-of-two size.
    /// </summary>
    public ArrayPool<byte> BufferArrays { get; } = ArrayPool<byte>.Create(ByteRing.MaxSupportedCapacity, BufferArraysPerSize);

    /// <summary>How many free arrays of one size <see cref="BufferArrays"/> keeps.</summary>
    public const int BufferArraysPerSize = 16;

    public DropCounters Drops => _ip.Drops;

    public int Mtu => _ip.Mtu;

    public uint LocalAddress => _ip.Address;

    /// <summary>Live connections (all states but CLOSED, TIME_WAIT included).</summary>
    public int ConnectionCount => _connections.Count;

    internal ICollection<TcpConnection> Connections => _connections.Values;

    /// <summary>Whether a live connection's remote address (host order) satisfies <paramref name="remoteMatches"/>; a scan, for timers, never per packet.</summary>
    internal bool HasConnection(Func<uint, bool> remoteMatches)
    {
        foreach (var (tuple, _) in _connections)
        {
            if (remoteMatches(tuple.RemoteAddress))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Handles one inbound TCP segment (the IP layer verified the header) and takes ownership of the buffer.</summary>
    public void Deliver(PacketBuffer packet, Ipv4Packet ip)
    {
        try
        {
            if (!TcpSegment.TryCreate(ip.Payload, out var segment))
            {
                _ip.Drops.Increment(DropReason.MalformedPacket);
                return;
            }

            if (!segment.VerifyChecksumIpv4(ip.Source, ip.Destination))
            {
                _ip.Drops.Increment(DropReason.BadChecksum);
                return;
            }

            if (!segment.TryParseOptions(out var options))
            {
                _ip.Drops.Increment(DropReason.MalformedPacket);
                return;
            }

            var tuple = new TcpTuple(ip.Destination, segment.DestinationPort, ip.Source, segment.SourcePort);
            if (_connections.TryGetValue(tuple, out var connection))
            {
                connection.OnSegment(segment, options);
                return;
            }

            var flags = segment.Flags;
            if (_listeners.TryGetValue(segment.DestinationPort, out var listener) && Volatile.Read(ref _disposed) == 0)
            {
                OnListenSegment(listener, tuple, segment, options);
                return;
            }

            _ip.Drops.Increment(DropReason.TcpNoConnection);
            if ((flags & TcpFlags.Rst) == 0)
            {
                SendResetFor(tuple, segment);
            }
        }
        finally
        {
            packet.Return();
        }
    }

    /// <summary>RFC 9293 3.10.7.2, LISTEN.</summary>
    private void OnListenSegment(TcpListenerCore listener, TcpTuple tuple, TcpSegment segment, in TcpOptions options)
    {
        var flags = segment.Flags;
        if ((flags & TcpFlags.Rst) != 0)
        {
            return;
        }

        if ((flags & TcpFlags.Ack) != 0)
        {
            SendResetFor(tuple, segment);
            return;
        }

        if ((flags & TcpFlags.Syn) == 0)
        {
            return;
        }

        var connection = TcpConnection.Accept(this, tuple, listener, new SeqNumber(segment.SequenceNumber), segment.Window, options);
        if (!listener.TryAddHalfOpen(connection))
        {
            _ip.Drops.Increment(DropReason.TcpBacklogFull);
            TcpLog.BacklogFull(_logger, listener.Port);
            return;
        }

        if (!_connections.TryAdd(tuple, connection))
        {
            listener.OnConnectionGone(connection);
            return;
        }

        connection.StartAccept();
    }

    /// <summary>Answers a segment that has no connection (RFC 9293 3.10.7.1): never to a RST.</summary>
    public void SendResetFor(TcpTuple tuple, TcpSegment segment)
    {
        var flags = segment.Flags;
        if ((flags & TcpFlags.Rst) != 0)
        {
            return;
        }

        uint seq;
        uint ack;
        TcpFlags reply;
        if ((flags & TcpFlags.Ack) != 0)
        {
            seq = segment.AcknowledgmentNumber;
            ack = 0;
            reply = TcpFlags.Rst;
        }
        else
        {
            int length = segment.Payload.Length + ((flags & TcpFlags.Syn) != 0 ? 1 : 0) + ((flags & TcpFlags.Fin) != 0 ? 1 : 0);
            seq = 0;
            ack = unchecked(segment.SequenceNumber + (uint)length);
            reply = TcpFlags.Rst | TcpFlags.Ack;
        }

        var packet = Pool.Rent();
        var options = TcpOptions.None;
        int tcpLength = TcpHeader.GetHeaderLength(options);
        packet.Length = Ipv4Packet.MinHeaderLength + tcpLength;
        var tcp = packet.Span[Ipv4Packet.MinHeaderLength..];
        new TcpHeader(tuple.LocalPort, tuple.RemotePort, seq, ack, reply, 0).Emit(tcp, options);
        TcpSegment.FillChecksumIpv4(tcp, tuple.LocalAddress, tuple.RemoteAddress);
        SendSegment(packet, tuple.RemoteAddress, tcpLength);
    }

    /// <summary>Adds the IPv4 header in front of a TCP segment at offset 20 and sends the packet (takes ownership).</summary>
    public void SendSegment(PacketBuffer packet, uint destination, int tcpLength) => _ip.SendTransport(packet, destination, IpProtocol.Tcp, tcpLength);

    /// <summary>Starts listening on <paramref name="port"/>.</summary>
    public TcpListenerCore Listen(ushort port, MeshTcpListenerOptions options)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var listener = new TcpListenerCore(this, port, options);
        if (!_listeners.TryAdd(port, listener))
        {
            throw new SocketException((int)SocketError.AddressAlreadyInUse, $"TCP port {port} is already listening on this node.");
        }

        TcpLog.Listening(_logger, port);
        return listener;
    }

    /// <summary>Forgets a listener (only if it is still the one on its port).</summary>
    internal void Unlisten(TcpListenerCore listener) => _listeners.TryRemove(new KeyValuePair<ushort, TcpListenerCore>(listener.Port, listener));

    /// <summary>Opens a connection: picks a free ephemeral port, sends the SYN, waits for the handshake or the timeout.</summary>
    public async Task<TcpConnection> ConnectAsync(uint remoteAddress, ushort remotePort, MeshTcpOptions options, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        TcpConnection? connection = null;
        int start = Random.Shared.Next(EphemeralPortCount);
        for (int i = 0; i < EphemeralPortCount && connection is null; i++)
        {
            var port = (ushort)(EphemeralPortFirst + ((start + i) % EphemeralPortCount));
            if (_listeners.ContainsKey(port))
            {
                continue;
            }

            var tuple = new TcpTuple(LocalAddress, port, remoteAddress, remotePort);
            var candidate = TcpConnection.Connect(this, tuple, options);
            if (_connections.TryAdd(tuple, candidate))
            {
                connection = candidate;
            }
        }

        if (connection is null)
        {
            throw new SocketException((int)SocketError.AddressAlreadyInUse, "No ephemeral TCP port (49152-65535) is free for this destination.");
        }

        connection.StartConnect();
        try
        {
            await connection.ConnectedTask.WaitAsync(options.ConnectTimeout, Time, cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch (TimeoutException)
        {
            connection.Abort();
            throw new SocketException((int)SocketError.TimedOut, $"Connection to {Format(remoteAddress)}:{remotePort} timed out after {options.ConnectTimeout.TotalSeconds:0.#} s.");
        }
        catch (OperationCanceledException)
        {
            connection.Abort();
            throw;
        }
    }

    /// <summary>An ICMP destination unreachable quoting one of our TCP segments.</summary>
    public void OnIcmpUnreachable(uint remoteAddress, ReadOnlySpan<byte> quotedTransport, SocketError error)
    {
        if (quotedTransport.Length < 4)
        {
            return;
        }

        ushort localPort = BinaryPrimitives.ReadUInt16BigEndian(quotedTransport);
        ushort remotePort = BinaryPrimitives.ReadUInt16BigEndian(quotedTransport[2..]);
        if (_connections.TryGetValue(new TcpTuple(LocalAddress, localPort, remoteAddress, remotePort), out var connection))
        {
            connection.OnUnreachable(error);
        }
    }

    /// <summary>RFC 6528: ISN = M + F(4-tuple, secret), M a 4-microsecond clock, F a keyed hash.</summary>
    public SeqNumber NewInitialSequenceNumber(TcpTuple tuple)
    {
        Span<byte> input = stackalloc byte[12];
        BinaryPrimitives.WriteUInt32BigEndian(input, tuple.LocalAddress);
        BinaryPrimitives.WriteUInt16BigEndian(input[4..], tuple.LocalPort);
        BinaryPrimitives.WriteUInt32BigEndian(input[6..], tuple.RemoteAddress);
        BinaryPrimitives.WriteUInt16BigEndian(input[10..], tuple.RemotePort);
        Span<byte> hash = stackalloc byte[32];
        HMACSHA256.HashData(_isnSecret, input, hash);
        uint f = BinaryPrimitives.ReadUInt32LittleEndian(hash);
        uint m = unchecked((uint)(Time.GetTimestamp() * 250_000 / Time.TimestampFrequency));
        return new SeqNumber(unchecked(m + f));
    }

    internal void Remove(TcpConnection connection) =>
        _connections.TryRemove(new KeyValuePair<TcpTuple, TcpConnection>(connection.Tuple, connection));

    /// <summary>Fails every connection and listener (the node is going away).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var listener in _listeners.Values)
        {
            listener.Stop();
        }

        foreach (var connection in _connections.Values)
        {
            connection.OnStackDisposed();
        }
    }

    internal static string Format(uint address) => new IPAddress(BinaryPrimitives.ReverseEndianness(address)).ToString();
}

/// <summary>A listening port: the half-open count, the accept queue and its backlog.</summary>
internal sealed class TcpListenerCore
{
    private readonly TcpStack _stack;
    private readonly Channel<TcpConnection> _accepted;
    private readonly Lock _gate = new();
    private readonly HashSet<TcpConnection> _halfOpen = new();
    private int _queued;
    private bool _stopped;

    public TcpListenerCore(TcpStack stack, ushort port, MeshTcpListenerOptions options)
    {
        _stack = stack;
        Port = port;
        Options = options;
        _accepted = Channel.CreateUnbounded<TcpConnection>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = false });
    }

    public ushort Port { get; }

    public MeshTcpListenerOptions Options { get; }

    /// <summary>Counts a new half-open connection if the backlog has room (half-open and not-yet-accepted ones together).</summary>
    public bool TryAddHalfOpen(TcpConnection connection)
    {
        lock (_gate)
        {
            if (_stopped || _queued + _halfOpen.Count >= Options.Backlog * 2 || _queued >= Options.Backlog)
            {
                return false;
            }

            _halfOpen.Add(connection);
            return true;
        }
    }

    /// <summary>A connection completed its handshake: queue it for AcceptAsync.</summary>
    public bool TryEnqueue(TcpConnection connection)
    {
        lock (_gate)
        {
            _halfOpen.Remove(connection);
            if (_stopped || _queued >= Options.Backlog)
            {
                return false;
            }

            _queued++;
        }

        return _accepted.Writer.TryWrite(connection);
    }

    /// <summary>A connection of this listener ended before or after acceptance.</summary>
    public void OnConnectionGone(TcpConnection connection)
    {
        lock (_gate)
        {
            _halfOpen.Remove(connection);
        }
    }

    public async ValueTask<TcpConnection> AcceptAsync(CancellationToken cancellationToken)
    {
        try
        {
            var connection = await _accepted.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                _queued--;
            }

            return connection;
        }
        catch (ChannelClosedException)
        {
            throw new ObjectDisposedException(nameof(MeshTcpListener), "The listener was disposed.");
        }
    }

    /// <summary>Stops listening; queued connections that were never accepted are reset.</summary>
    public void Stop()
    {
        lock (_gate)
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
        }

        _stack.Unlisten(this);
        _accepted.Writer.TryComplete();
        while (_accepted.Reader.TryRead(out var connection))
        {
            connection.Abort();
        }
    }
}

/// <summary>Source-generated log messages of the TCP layer.</summary>
internal static partial class TcpLog
{
    [LoggerMessage(100, LogLevel.Debug, "TCP listening on port {Port}")]
    public static partial void Listening(ILogger logger, int port);

    [LoggerMessage(101, LogLevel.Warning, "TCP listener on port {Port}: backlog full, SYN dropped")]
    public static partial void BacklogFull(ILogger logger, int port);
}
