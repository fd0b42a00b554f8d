using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Stack.Tcp;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Stack;

/// <summary>
/// A node's IPv4 stack: validates inbound packets, reassembles fragments, answers pings, delivers
/// UDP to bound sockets, and builds outbound packets (fragmenting those above the MTU) for the
/// layer below (<see cref="IPacketOutput"/>).
/// </summary>
/// <remarks>
/// <para><b>Ownership.</b> <see cref="DeliverInbound"/> takes ownership of the buffer: it is returned
/// to its pool, reused in place for a reply (an echo request becomes its echo reply), or queued on a
/// UDP socket until the application copies it out. Untrusted bytes never make it throw: every bad
/// packet is dropped and counted in <see cref="DropCounters"/>.</para>
/// <para><b>Threading.</b> For ICMP and UDP this class is thread-safe with small structures of its own:
/// concurrent dictionaries for sockets and pending pings, a lock around the reassembler and one
/// around the ICMP error rate limiter; no lock is held across an await and no Task is created per
/// packet. <see cref="DeliverInbound"/> runs on the transport's receive thread(s). When TCP arrives
/// (protocol 6 is dispatched to <c>DeliverTcp</c>, the hook for it), its state machine will run on
/// one loop per node that owns all connection state and is driven by <c>Poll(now)</c>, its next
/// deadline and a channel of inbound segments: <c>DeliverTcp</c> will only post the buffer to that
/// channel, and applications' streams will talk to the loop through channels and awaitables. The
/// ICMP/UDP paths here can then move onto the same loop unchanged, since they only touch
/// thread-safe structures.</para>
/// <para><b>Sizes.</b> Outgoing packets never exceed <see cref="NetStackOptions.Mtu"/>: a larger UDP
/// datagram or echo message is sent as IPv4 fragments (the stack never sets DF). A UDP payload over
/// 65507 bytes (what an IPv4 datagram can carry) is refused with <see cref="ArgumentException"/>.</para>
/// </remarks>
internal sealed class NetStack : IAsyncDisposable
{
    /// <summary>Bytes of the offending datagram quoted in an ICMP error: as much as fits 576 bytes (RFC 1812 4.3.2.3).</summary>
    private const int MaxIcmpQuote = 576 - Ipv4Packet.MinHeaderLength - IcmpV4Packet.HeaderLength;

    private const int EphemeralPortFirst = 49152;
    private const int EphemeralPortCount = 65536 - EphemeralPortFirst;

    private readonly NetStackOptions _options;
    private readonly IPacketOutput _output;
    private readonly PacketBufferPool _pool;
    private readonly DropCounters _drops;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly uint _address;
    private readonly ConcurrentDictionary<int, MeshUdpSocket> _udpSockets = new();
    private readonly ConcurrentDictionary<uint, PendingPing> _pings = new();
    private readonly Lock _reassemblyLock = new();
    private readonly Ipv4Reassembler _reassembler;
    private readonly Lock _icmpLimiterLock = new();
    private readonly ushort _pingIdentifier;
    private double _icmpTokens;
    private long _icmpTokensUpdated;
    private int _pingSequence;
    private int _ipIdentification;

    /// <summary>Creates the stack for one node.</summary>
    public NetStack(NetStackOptions options, IPacketOutput output, PacketBufferPool pool, DropCounters drops, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(drops);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        options.Validate();
        _options = options;
        _output = output;
        _pool = pool;
        _drops = drops;
        _time = time;
        _logger = logger;
        _address = options.Address;
        _reassembler = new Ipv4Reassembler(pool, drops, time, options.MaxReassemblyDatagrams, options.MaxFragmentsPerDatagram, options.ReassemblyTimeout);
        _icmpTokens = options.IcmpErrorsPerSecond;
        _icmpTokensUpdated = time.GetTimestamp();
        _pingIdentifier = (ushort)Random.Shared.Next(0, 65536);
        _ipIdentification = Random.Shared.Next();
        Tcp = new TcpStack(this, logger);
    }

    /// <summary>The TCP layer.</summary>
    public TcpStack Tcp { get; }

    internal TimeProvider Time => _time;

    internal PacketBufferPool Pool => _pool;

    internal DropCounters Drops => _drops;

    /// <summary>The node's IPv4 address (host order).</summary>
    public uint Address => _address;

    /// <summary>The largest IP packet the stack sends.</summary>
    public int Mtu => _options.Mtu;

    /// <summary>
    /// Handles one decrypted inbound IP packet and takes ownership of <paramref name="packet"/>.
    /// Trailing bytes beyond the IPv4 total length (WireGuard padding) are ignored. Never throws.
    /// </summary>
    public void DeliverInbound(PacketBuffer packet)
    {
        ArgumentNullException.ThrowIfNull(packet);
        try
        {
            DeliverCore(packet);
        }
#pragma warning disable CA1031 // Untrusted input must never throw out of the receive loop; a bug here is logged, not fatal.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            // The buffer's state is unknown here; leaving it to the GC is safer than returning it twice.
            _drops.Increment(DropReason.MalformedPacket);
            Log.InboundFailed(_logger, ex);
        }
    }

    /// <summary>
    /// Sends an ICMP echo request with <paramref name="payloadSize"/> bytes of data to
    /// <paramref name="destination"/> and returns the round-trip time measured with the stack's
    /// <see cref="TimeProvider"/>. Concurrent pings are told apart by their sequence numbers.
    /// </summary>
    /// <exception cref="TimeoutException">No reply within <paramref name="timeout"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled.</exception>
    public async Task<TimeSpan> PingAsync(uint destination, int payloadSize, TimeSpan timeout, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(payloadSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(payloadSize, Ipv4Reassembler.MaxPayloadLength - IcmpV4Packet.HeaderLength);
        ct.ThrowIfCancellationRequested();

        var pending = new PendingPing(destination);
        ushort sequence;
        uint key;
        do
        {
            sequence = (ushort)Interlocked.Increment(ref _pingSequence);
            key = ((uint)_pingIdentifier << 16) | sequence;
        }
        while (!_pings.TryAdd(key, pending));

        try
        {
            var buffer = _pool.Rent();
            int icmpLength = IcmpV4Packet.HeaderLength + payloadSize;
            buffer.Length = Ipv4Packet.MinHeaderLength + icmpLength;
            var span = buffer.Span;
            var message = span[Ipv4Packet.MinHeaderLength..];
            var data = message[IcmpV4Packet.HeaderLength..];
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = (byte)i;
            }

            new IcmpV4Echo(IsRequest: true, _pingIdentifier, sequence).Emit(message);
            new Ipv4Header(_address, destination, IpProtocol.Icmp, icmpLength, Identification: NextIdentification()).Emit(span);
            pending.StartTimestamp = _time.GetTimestamp();
            SendIpv4(buffer);
            return await pending.Task.WaitAsync(timeout, _time, ct).ConfigureAwait(false);
        }
        finally
        {
            _pings.TryRemove(key, out _);
        }
    }

    /// <summary>
    /// Opens a UDP socket on <paramref name="port"/>; 0 picks a free ephemeral port in 49152–65535.
    /// </summary>
    /// <exception cref="SocketException">The port is already bound on this node (<see cref="SocketError.AddressAlreadyInUse"/>), or no ephemeral port is free.</exception>
    public MeshUdpSocket BindUdp(int port)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        if (port != 0)
        {
            var socket = new MeshUdpSocket(this, (ushort)port, _options.UdpReceiveQueueCapacity);
            if (!_udpSockets.TryAdd(port, socket))
            {
                throw new SocketException((int)SocketError.AddressAlreadyInUse, $"UDP port {port} is already bound on this node.");
            }

            Log.UdpBound(_logger, port);
            return socket;
        }

        int start = Random.Shared.Next(EphemeralPortCount);
        for (int i = 0; i < EphemeralPortCount; i++)
        {
            int candidate = EphemeralPortFirst + ((start + i) % EphemeralPortCount);
            if (_udpSockets.ContainsKey(candidate))
            {
                continue;
            }

            var socket = new MeshUdpSocket(this, (ushort)candidate, _options.UdpReceiveQueueCapacity);
            if (_udpSockets.TryAdd(candidate, socket))
            {
                Log.UdpBound(_logger, candidate);
                return socket;
            }
        }

        throw new SocketException((int)SocketError.AddressAlreadyInUse, "No ephemeral UDP port (49152-65535) is free on this node.");
    }

    /// <summary>Builds and sends one UDP datagram from this node (fragmented when above the MTU).</summary>
    internal void SendUdp(ushort sourcePort, ReadOnlySpan<byte> payload, uint destination, ushort destinationPort)
    {
        if (payload.Length > UdpDatagram.MaxIpv4PayloadLength)
        {
            throw new ArgumentException($"A UDP payload over IPv4 is at most {UdpDatagram.MaxIpv4PayloadLength} bytes; this one is {payload.Length}.", nameof(payload));
        }

        var buffer = _pool.Rent();
        int udpLength = UdpDatagram.HeaderLength + payload.Length;
        buffer.Length = Ipv4Packet.MinHeaderLength + udpLength;
        var span = buffer.Span;
        payload.CopyTo(span[(Ipv4Packet.MinHeaderLength + UdpDatagram.HeaderLength)..]);
        new UdpHeader(sourcePort, destinationPort, payload.Length).EmitIpv4(span[Ipv4Packet.MinHeaderLength..], _address, destination);
        new Ipv4Header(_address, destination, IpProtocol.Udp, udpLength, Identification: NextIdentification()).Emit(span);
        SendIpv4(buffer);
    }

    /// <summary>Forgets a closed socket (only if <paramref name="socket"/> is still the one bound there).</summary>
    internal void Unbind(MeshUdpSocket socket)
    {
        if (_udpSockets.TryRemove(new KeyValuePair<int, MeshUdpSocket>(socket.Port, socket)))
        {
            Log.UdpClosed(_logger, socket.Port);
        }
    }

    private void DeliverCore(PacketBuffer packet)
    {
        var span = packet.Span;
        if (!Ipv4Packet.TryCreate(span, out var ip))
        {
            // IPv6 is well-formed but not handled yet; anything else is garbage.
            Drop(packet, span.Length > 0 && span[0] >> 4 == 6 ? DropReason.UnsupportedProtocol : DropReason.MalformedPacket);
            return;
        }

        if (!ip.VerifyHeaderChecksum())
        {
            Drop(packet, DropReason.BadChecksum);
            return;
        }

        if (ip.Destination != _address)
        {
            Drop(packet, DropReason.NotForThisNode);
            return;
        }

        packet.Length = ip.TotalLength; // cut the padding
        if (_reassembler.PendingCount != 0)
        {
            // No loop drives the stack yet, so incomplete datagrams are expired on the next packet
            // (a racy read of the count is fine: it only decides whether to take the lock).
            lock (_reassemblyLock)
            {
                _reassembler.ExpireStale(_time.GetTimestamp());
            }
        }

        if (ip.IsFragment)
        {
            PacketBuffer? whole;
            bool complete;
            lock (_reassemblyLock)
            {
                complete = _reassembler.TryAdd(ip, _time.GetTimestamp(), out whole);
            }

            packet.Return();
            if (!complete)
            {
                return;
            }

            packet = whole!;
            Ipv4Packet.TryCreate(packet.Span, out ip);
        }

        switch (ip.Protocol)
        {
            case IpProtocol.Icmp:
                DeliverIcmp(packet, ip);
                break;
            case IpProtocol.Udp:
                DeliverUdp(packet, ip);
                break;
            case IpProtocol.Tcp:
                DeliverTcp(packet, ip);
                break;
            default:
                SendIcmpError(ip, IcmpV4UnreachableCode.ProtocolUnreachable);
                Drop(packet, DropReason.UnsupportedProtocol);
                break;
        }
    }

    private void DeliverIcmp(PacketBuffer packet, Ipv4Packet ip)
    {
        if (!IcmpV4Packet.TryCreate(ip.Payload, out var icmp))
        {
            Drop(packet, DropReason.MalformedPacket);
            return;
        }

        if (!icmp.VerifyChecksum())
        {
            Drop(packet, DropReason.BadChecksum);
            return;
        }

        switch (icmp.Type)
        {
            case IcmpV4Type.EchoRequest when icmp.Code == 0:
                SendEchoReply(packet, ip, icmp);
                break;
            case IcmpV4Type.EchoReply when icmp.Code == 0:
                uint key = ((uint)icmp.Identifier << 16) | icmp.SequenceNumber;
                if (_pings.TryGetValue(key, out var pending) && pending.Destination == ip.Source)
                {
                    pending.Complete(_time.GetElapsedTime(pending.StartTimestamp));
                    packet.Return();
                }
                else
                {
                    Drop(packet, DropReason.UnsolicitedReply);
                }

                break;
            case IcmpV4Type.DestinationUnreachable or IcmpV4Type.TimeExceeded:
                Log.IcmpErrorReceived(_logger, (byte)icmp.Type, icmp.Code, ip.Source);
                if (icmp.Type == IcmpV4Type.DestinationUnreachable)
                {
                    NotifyTcpOfUnreachable(icmp.Payload, (IcmpV4UnreachableCode)icmp.Code);
                }

                packet.Return();
                break;
            default:
                Drop(packet, DropReason.UnsupportedProtocol);
                break;
        }
    }

    private void DeliverUdp(PacketBuffer packet, Ipv4Packet ip)
    {
        if (!UdpDatagram.TryCreate(ip.Payload, out var udp))
        {
            Drop(packet, DropReason.MalformedPacket);
            return;
        }

        if (!udp.VerifyChecksumIpv4(ip.Source, ip.Destination))
        {
            Drop(packet, DropReason.BadChecksum);
            return;
        }

        if (!_udpSockets.TryGetValue(udp.DestinationPort, out var socket))
        {
            SendIcmpError(ip, IcmpV4UnreachableCode.PortUnreachable);
            Drop(packet, DropReason.PortUnreachable);
            return;
        }

        uint source = ip.Source;
        ushort sourcePort = udp.SourcePort;
        int payloadLength = udp.Length - UdpDatagram.HeaderLength;
        packet.TrimFront(ip.HeaderLength + UdpDatagram.HeaderLength);
        packet.Length = payloadLength;
        if (!socket.TryEnqueue(packet, source, sourcePort))
        {
            Drop(packet, DropReason.QueueFull);
        }
    }

    private void DeliverTcp(PacketBuffer packet, Ipv4Packet ip) => Tcp.Deliver(packet, ip);

    /// <summary>
    /// Sends a transport segment the caller wrote at offset 20 of <paramref name="packet"/>
    /// (<paramref name="transportLength"/> bytes): the IPv4 header goes in front. Takes ownership.
    /// </summary>
    internal void SendTransport(PacketBuffer packet, uint destination, byte protocol, int transportLength)
    {
        new Ipv4Header(_address, destination, protocol, transportLength, Identification: NextIdentification()).Emit(packet.Span);
        SendIpv4(packet);
    }

    /// <summary>
    /// A destination unreachable quotes the start of the offending packet (its IP header and at
    /// least 8 bytes, so truncated: read by hand, not through <see cref="Ipv4Packet"/>). When it is one
    /// of our TCP segments, the connection it names may fail (RFC 1122 4.2.3.9).
    /// </summary>
    private void NotifyTcpOfUnreachable(ReadOnlySpan<byte> quote, IcmpV4UnreachableCode code)
    {
        if (quote.Length < Ipv4Packet.MinHeaderLength || quote[0] >> 4 != 4)
        {
            return;
        }

        int headerLength = (quote[0] & 0x0F) * 4;
        if (headerLength < Ipv4Packet.MinHeaderLength || quote.Length < headerLength + 4 || quote[9] != IpProtocol.Tcp
            || BinaryPrimitives.ReadUInt32BigEndian(quote[12..]) != _address)
        {
            return;
        }

        var error = code == IcmpV4UnreachableCode.PortUnreachable ? SocketError.ConnectionRefused : SocketError.HostUnreachable;
        Tcp.OnIcmpUnreachable(BinaryPrimitives.ReadUInt32BigEndian(quote[16..]), quote[headerLength..], error);
    }

    /// <summary>Turns the echo request in <paramref name="packet"/> into its reply in place and sends it.</summary>
    private void SendEchoReply(PacketBuffer packet, Ipv4Packet ip, IcmpV4Packet icmp)
    {
        uint requester = ip.Source;
        icmp.Type = IcmpV4Type.EchoReply;
        icmp.FillChecksum();
        int icmpLength = icmp.Buffer.Length;

        // Replace the request's header (options and all) by a fresh 20-byte one.
        packet.TrimFront(ip.HeaderLength);
        if (packet.Offset < PacketBuffer.HeadRoom + Ipv4Packet.MinHeaderLength)
        {
            var copy = _pool.Rent();
            copy.Offset = PacketBuffer.HeadRoom + Ipv4Packet.MinHeaderLength;
            copy.Length = packet.Length;
            packet.Span.CopyTo(copy.Span);
            packet.Return();
            packet = copy;
        }

        var header = packet.Prepend(Ipv4Packet.MinHeaderLength);
        new Ipv4Header(_address, requester, IpProtocol.Icmp, icmpLength, Identification: NextIdentification()).Emit(header);
        SendIpv4(packet);
    }

    /// <summary>Sends a destination-unreachable error about <paramref name="offending"/>, subject to the rate limit.</summary>
    private void SendIcmpError(Ipv4Packet offending, IcmpV4UnreachableCode code)
    {
        uint to = offending.Source;
        // Never to a non-unicast source (RFC 1122 3.2.2): 0.0.0.0, broadcast, multicast, loopback.
        if (to == 0 || to == uint.MaxValue || (to >> 28) == 0xE || (to >> 24) == 127 || !TryTakeIcmpErrorToken())
        {
            return;
        }

        int quoted = Math.Min(offending.Buffer.Length, MaxIcmpQuote);
        int icmpLength = IcmpV4Packet.HeaderLength + quoted;
        var buffer = _pool.Rent();
        buffer.Length = Ipv4Packet.MinHeaderLength + icmpLength;
        var span = buffer.Span;
        offending.Buffer[..quoted].CopyTo(span[(Ipv4Packet.MinHeaderLength + IcmpV4Packet.HeaderLength)..]);
        IcmpV4Packet.TryCreate(span[Ipv4Packet.MinHeaderLength..], out var icmp);
        icmp.Type = IcmpV4Type.DestinationUnreachable;
        icmp.Code = (byte)code;
        icmp.RestOfHeader = 0;
        icmp.FillChecksum();
        new Ipv4Header(_address, to, IpProtocol.Icmp, icmpLength, Identification: NextIdentification()).Emit(span);
        SendIpv4(buffer);
    }

    private bool TryTakeIcmpErrorToken()
    {
        int rate = _options.IcmpErrorsPerSecond;
        lock (_icmpLimiterLock)
        {
            long now = _time.GetTimestamp();
            _icmpTokens = Math.Min(rate, _icmpTokens + (_time.GetElapsedTime(_icmpTokensUpdated, now).TotalSeconds * rate));
            _icmpTokensUpdated = now;
            if (_icmpTokens >= 1)
            {
                _icmpTokens -= 1;
                return true;
            }
        }

        Log.IcmpErrorRateLimited(_logger);
        return false;
    }

    /// <summary>Hands a packet this stack built (20-byte header, DF clear) to the output, in fragments when above the MTU.</summary>
    private void SendIpv4(PacketBuffer packet)
    {
        if (packet.Length <= _options.Mtu)
        {
            _output.SendPacket(packet);
            return;
        }

        Ipv4Packet.TryCreate(packet.Span, out var ip);
        var header = Ipv4Header.Parse(ip);
        var payload = ip.Payload;
        int chunk = (_options.Mtu - Ipv4Packet.MinHeaderLength) & ~7;
        for (int offset = 0; offset < payload.Length; offset += chunk)
        {
            int length = Math.Min(chunk, payload.Length - offset);
            var fragment = _pool.Rent();
            fragment.Length = Ipv4Packet.MinHeaderLength + length;
            var span = fragment.Span;
            (header with
            {
                PayloadLength = length,
                MoreFragments = offset + length < payload.Length,
                FragmentOffset = offset,
            }).Emit(span);
            payload.Slice(offset, length).CopyTo(span[Ipv4Packet.MinHeaderLength..]);
            _output.SendPacket(fragment);
        }

        packet.Return();
    }

    private ushort NextIdentification() => (ushort)Interlocked.Increment(ref _ipIdentification);

    /// <summary>Closes every UDP socket and fails pending pings; later packets are dropped as before.</summary>
    public async ValueTask DisposeAsync()
    {
        Tcp.Dispose();
        foreach (var socket in _udpSockets.Values)
        {
            await socket.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var ping in _pings.Values)
        {
            ping.TrySetException(new ObjectDisposedException(nameof(MeshNode), "The node was disposed."));
        }
    }

    private void Drop(PacketBuffer packet, DropReason reason)
    {
        _drops.Increment(reason);
        Log.PacketDropped(_logger, reason);
        packet.Return();
    }

    /// <summary>An echo request waiting for its reply.</summary>
    private sealed class PendingPing(uint destination) : TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public uint Destination { get; } = destination;

        public long StartTimestamp { get; set; }

        public void Complete(TimeSpan roundTrip) => TrySetResult(roundTrip);
    }
}
