using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Stack;
using TunnelMesh.Net.Stack.Tcp;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Stack.Tcp;

/// <summary>A TCP segment as the scripted peer sends it or as the stack under test sent it (ports, numbers, flags, window, options, data).</summary>
internal sealed record Segment(ushort SourcePort, ushort DestinationPort, uint Seq, uint Ack, TcpFlags Flags, ushort Window)
{
    public TcpOptions Options { get; init; } = TcpOptions.None;

    public byte[] Payload { get; init; } = [];

    /// <summary>SEG.LEN: data plus one for SYN and one for FIN.</summary>
    public int SequenceLength => Payload.Length + ((Flags & TcpFlags.Syn) != 0 ? 1 : 0) + ((Flags & TcpFlags.Fin) != 0 ? 1 : 0);

    public bool Has(TcpFlags flags) => (Flags & flags) == flags;

    public override string ToString() => $"{Flags} seq={Seq} ack={Ack} win={Window} len={Payload.Length} {Options}";
}

/// <summary>
/// One <see cref="NetStack"/> (100.64.0.2) under a <see cref="FakeTimeProvider"/>, facing a peer
/// (100.64.0.1) that the test scripts by hand: the test delivers crafted segments and reads back, in
/// order, every segment the stack sent. Timers fire only inside <see cref="Advance(TimeSpan)"/>, on the test's
/// thread, so each test is deterministic.
/// </summary>
internal sealed class TcpHarness : IPacketOutput
{
    public const uint LocalAddress = 0x64400002;
    public const uint PeerAddress = 0x64400001;
    public const int Mtu = 1420;

    private readonly Queue<Segment> _sent = new();
    private readonly Lock _gate = new();
    private readonly PacketBufferPool _pool = new();

    public TcpHarness()
    {
        Stack = new NetStack(new NetStackOptions { Address = LocalAddress, Mtu = Mtu }, this, _pool, Drops, Time, Logger);
    }

    public FakeTimeProvider Time { get; } = new();

    public DropCounters Drops { get; } = new();

    public CountingLogger Logger { get; } = new();

    public NetStack Stack { get; }

    /// <summary>The only connection in the stack's table (fails when there is none or several).</summary>
    public TcpConnection Connection => Assert.Single(Stack.Tcp.Connections);

    public int ConnectionCount => Stack.Tcp.ConnectionCount;

    /// <summary>Segments sent and not yet taken.</summary>
    public int Pending
    {
        get
        {
            lock (_gate)
            {
                return _sent.Count;
            }
        }
    }

    void IPacketOutput.SendPacket(PacketBuffer ipPacket)
    {
        try
        {
            Assert.True(Ipv4Packet.TryCreate(ipPacket.Span, out var ip), "the stack sent a valid IPv4 packet");
            Assert.Equal(IpProtocol.Tcp, ip.Protocol);
            Assert.Equal(LocalAddress, ip.Source);
            Assert.Equal(PeerAddress, ip.Destination);
            Assert.True(TcpSegment.TryCreate(ip.Payload, out var tcp), "the stack sent a valid TCP header");
            Assert.True(tcp.VerifyChecksumIpv4(ip.Source, ip.Destination), "the stack's TCP checksum is right");
            Assert.True(tcp.TryParseOptions(out var options), "the stack's TCP options parse");
            var header = TcpHeader.Parse(tcp);
            var segment = new Segment(header.SourcePort, header.DestinationPort, header.SequenceNumber, header.AcknowledgmentNumber, header.Flags, header.Window)
            {
                Options = options,
                Payload = tcp.Payload.ToArray(),
            };
            lock (_gate)
            {
                _sent.Enqueue(segment);
            }
        }
        finally
        {
            ipPacket.Return();
        }
    }

    /// <summary>Delivers a crafted segment from the peer to the stack (correct checksum, in a buffer with head room).</summary>
    public void Deliver(Segment segment)
    {
        var options = segment.Options;
        int headerLength = TcpHeader.GetHeaderLength(options);
        var tcp = new byte[headerLength + segment.Payload.Length];
        new TcpHeader(segment.SourcePort, segment.DestinationPort, segment.Seq, segment.Ack, segment.Flags, segment.Window).Emit(tcp, options);
        segment.Payload.CopyTo(tcp.AsSpan(headerLength));
        TcpSegment.FillChecksumIpv4(tcp, PeerAddress, LocalAddress);
        var ip = new byte[Ipv4Packet.MinHeaderLength + tcp.Length];
        new Ipv4Header(PeerAddress, LocalAddress, IpProtocol.Tcp, tcp.Length).Emit(ip);
        tcp.CopyTo(ip.AsSpan(Ipv4Packet.MinHeaderLength));

        var buffer = _pool.Rent();
        buffer.Offset = PacketBuffer.HeadRoom + 16;
        buffer.Length = ip.Length;
        ip.CopyTo(buffer.Span);
        Stack.DeliverInbound(buffer);
    }

    /// <summary>The oldest segment sent and not yet taken; fails when there is none.</summary>
    public Segment Next()
    {
        lock (_gate)
        {
            Assert.True(_sent.Count > 0, "expected the stack to have sent a segment");
            return _sent.Dequeue();
        }
    }

    /// <summary>Takes every segment sent so far.</summary>
    public List<Segment> TakeAll()
    {
        lock (_gate)
        {
            var all = _sent.ToList();
            _sent.Clear();
            return all;
        }
    }

    /// <summary>Fails when the stack sent anything not yet taken.</summary>
    public void AssertNothingSent()
    {
        var left = TakeAll();
        Assert.True(left.Count == 0, "expected no segment, got: " + string.Join(" | ", left));
    }

    /// <summary>
    /// Moves the clock forward through every whole <see cref="AdvanceStep"/> on the way, the last move landing
    /// exactly on the target. FakeTimeProvider fires every timer that falls due within one <c>Advance</c> with
    /// the clock already at the end, so a timer armed by another timer's callback (the next SYN of a backoff, an
    /// RTO after a probe) would be scheduled from the end and not fire in the same call. In steps, a timer due
    /// on a whole millisecond fires exactly then, any other within a millisecond of its due time, and a chain
    /// of timers runs as it would in real time.
    /// </summary>
    public void Advance(TimeSpan by)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(by, TimeSpan.Zero);
        var now = Time.GetUtcNow();
        var target = now + by;
        long step = AdvanceStep.Ticks;
        for (var next = new DateTimeOffset(((now.UtcTicks / step) + 1) * step, TimeSpan.Zero); next < target; next += AdvanceStep)
        {
            Time.SetUtcNow(next);
        }

        Time.SetUtcNow(target);
    }

    public void Advance(int milliseconds) => Advance(TimeSpan.FromMilliseconds(milliseconds));

    /// <summary>The largest single move of the clock inside <see cref="Advance(TimeSpan)"/>.</summary>
    public static TimeSpan AdvanceStep { get; } = TimeSpan.FromMilliseconds(1);
}
