using System.Net;
using System.Net.Sockets;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Stack;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.Tests.Wire;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Stack;

public class NetStackTests
{
    private static readonly IPEndPoint EndPointA = new(IPAddress.Parse("100.64.0.1"), 0);
    private static readonly IPEndPoint EndPointB = new(IPAddress.Parse("100.64.0.2"), 0);

    private static IPEndPoint At(IPEndPoint address, int port) => new(address.Address, port);

    [Fact]
    public async Task Ping_both_ways_measures_rtt_with_the_time_provider()
    {
        var time = new FakeTimeProvider();
        var pair = new StackPair(time);
        pair.LinkAtoB.Hold = true;
        pair.LinkBtoA.Hold = true;

        var ping = pair.A.PingAsync(StackPair.AddressB, 56, TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromMilliseconds(3));
        Assert.Equal(1, pair.LinkAtoB.Pump()); // request reaches B, B answers into its link
        time.Advance(TimeSpan.FromMilliseconds(4));
        Assert.Equal(1, pair.LinkBtoA.Pump());
        Assert.Equal(TimeSpan.FromMilliseconds(7), await ping);

        var back = pair.B.PingAsync(StackPair.AddressA, 0, TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromMilliseconds(11));
        pair.LinkBtoA.Pump();
        pair.LinkAtoB.Pump();
        Assert.Equal(TimeSpan.FromMilliseconds(11), await back);
        Assert.Equal(0, pair.DropsA.Total + pair.DropsB.Total);

        // The reply carries the request's id, sequence and payload.
        var request = pair.LinkAtoB.Sent[0];
        var reply = pair.LinkBtoA.Sent[0];
        Assert.True(Ipv4Packet.TryCreate(request, out var rq));
        Assert.True(IcmpV4Packet.TryCreate(rq.Payload, out var rqIcmp));
        Assert.True(Ipv4Packet.TryCreate(reply, out var rp));
        Assert.True(IcmpV4Packet.TryCreate(rp.Payload, out var rpIcmp));
        Assert.Equal(IcmpV4Type.EchoReply, rpIcmp.Type);
        Assert.Equal(rqIcmp.Identifier, rpIcmp.Identifier);
        Assert.Equal(rqIcmp.SequenceNumber, rpIcmp.SequenceNumber);
        Assert.True(rqIcmp.Payload.SequenceEqual(rpIcmp.Payload));
        Assert.Equal(StackPair.AddressB, rp.Source);
        Assert.Equal(StackPair.AddressA, rp.Destination);
        Assert.True(rp.VerifyHeaderChecksum() && rpIcmp.VerifyChecksum());
    }

    [Fact]
    public async Task Ping_over_a_direct_link_with_the_real_clock()
    {
        var pair = new StackPair(TimeProvider.System);
        var rtt = await pair.A.PingAsync(StackPair.AddressB, 56, TimeSpan.FromSeconds(10));
        Assert.True(rtt >= TimeSpan.Zero && rtt < TimeSpan.FromSeconds(10));
        rtt = await pair.B.PingAsync(StackPair.AddressA, 1000, TimeSpan.FromSeconds(10));
        Assert.True(rtt >= TimeSpan.Zero);
    }

    [Fact]
    public async Task Ping_times_out_deterministically()
    {
        var time = new FakeTimeProvider();
        var pair = new StackPair(time);
        pair.LinkAtoB.Blackhole = true;
        var ping = pair.A.PingAsync(StackPair.AddressB, 8, TimeSpan.FromSeconds(2));
        time.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.False(ping.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));
        await Assert.ThrowsAsync<TimeoutException>(() => ping);

        // A reply arriving after the timeout finds nobody waiting and is counted, not thrown.
        pair.LinkAtoB.Blackhole = false;
        Assert.True(Ipv4Packet.TryCreate(pair.LinkAtoB.Sent[0], out var request));
        pair.B.DeliverInbound(pair.Buffer(request.Buffer));
        Assert.Equal(1, pair.DropsA.Get(DropReason.UnsolicitedReply));
    }

    [Fact]
    public async Task Ping_cancellation_throws_operation_canceled()
    {
        var pair = new StackPair(new FakeTimeProvider());
        pair.LinkAtoB.Blackhole = true;
        using var cts = new CancellationTokenSource();
        var ping = pair.A.PingAsync(StackPair.AddressB, 8, TimeSpan.FromSeconds(2), cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ping);
    }

    [Fact]
    public async Task Concurrent_pings_are_matched_by_sequence()
    {
        var time = new FakeTimeProvider();
        var pair = new StackPair(time);
        pair.LinkAtoB.Hold = true;
        pair.LinkBtoA.Hold = true;
        var pings = new List<Task<TimeSpan>>();
        for (int i = 0; i < 10; i++)
        {
            pings.Add(pair.A.PingAsync(StackPair.AddressB, i, TimeSpan.FromSeconds(5)));
            time.Advance(TimeSpan.FromMilliseconds(1));
        }

        pair.LinkAtoB.Pump();
        pair.LinkBtoA.Pump();
        var rtts = await Task.WhenAll(pings);
        for (int i = 0; i < 10; i++)
        {
            Assert.Equal(TimeSpan.FromMilliseconds(10 - i), rtts[i]);
        }
    }

    [Fact]
    public async Task Large_ping_is_fragmented_and_reassembled_both_ways()
    {
        var pair = new StackPair(TimeProvider.System);
        await pair.A.PingAsync(StackPair.AddressB, 5000, TimeSpan.FromSeconds(10));
        Assert.True(pair.LinkAtoB.Sent.Count >= 4);
        Assert.True(pair.LinkBtoA.Sent.Count >= 4);
        Assert.True(pair.LinkAtoB.MaxPacketSeen <= 1420 && pair.LinkBtoA.MaxPacketSeen <= 1420);
        Assert.Equal(0, pair.DropsA.Total + pair.DropsB.Total);
    }

    [Fact]
    public async Task Udp_both_ways_every_payload_size_up_to_1392()
    {
        var pair = new StackPair(TimeProvider.System);
        await using var a = pair.A.BindUdp(5000);
        await using var b = pair.B.BindUdp(0);
        Assert.InRange(b.LocalEndPoint.Port, 49152, 65535);
        Assert.Equal(EndPointB.Address, b.LocalEndPoint.Address);
        var receive = new byte[2000];
        for (int size = 0; size <= 1392; size++)
        {
            var payload = new byte[size];
            Random.Shared.NextBytes(payload);

            await a.SendToAsync(payload, b.LocalEndPoint);
            var got = await b.ReceiveFromAsync(receive);
            Assert.Equal(size, got.ReceivedBytes);
            Assert.True(receive.AsSpan(0, size).SequenceEqual(payload));
            Assert.Equal(At(EndPointA, 5000), got.RemoteEndPoint);

            await b.SendToAsync(payload, got.RemoteEndPoint);
            got = await a.ReceiveFromAsync(receive);
            Assert.Equal(size, got.ReceivedBytes);
            Assert.True(receive.AsSpan(0, size).SequenceEqual(payload));
            Assert.Equal(b.LocalEndPoint, got.RemoteEndPoint);
        }

        // 1392 + 8 + 20 = 1420: the largest unfragmented datagram, sent as one packet.
        Assert.Equal(1393, pair.LinkAtoB.Sent.Count);
        Assert.Equal(1420, pair.LinkAtoB.MaxPacketSeen);
        Assert.Equal(0, pair.DropsA.Total + pair.DropsB.Total);
    }

    [Theory]
    [InlineData(1393)]
    [InlineData(4000)]
    [InlineData(65507)]
    public async Task Large_udp_datagrams_are_fragmented_and_reassembled(int size)
    {
        var pair = new StackPair(TimeProvider.System);
        await using var a = pair.A.BindUdp(1);
        await using var b = pair.B.BindUdp(2);
        var payload = new byte[size];
        Random.Shared.NextBytes(payload);
        await a.SendToAsync(payload, At(EndPointB, 2));
        var receive = new byte[70000];
        var got = await b.ReceiveFromAsync(receive);
        Assert.Equal(size, got.ReceivedBytes);
        Assert.True(receive.AsSpan(0, size).SequenceEqual(payload));
        Assert.True(pair.LinkAtoB.Sent.Count >= 2);
        Assert.True(pair.LinkAtoB.MaxPacketSeen <= 1420);
        Assert.All(pair.LinkAtoB.Sent, p => Assert.True(Ipv4Packet.TryCreate(p.ToArray(), out var ip) && ip.VerifyHeaderChecksum()));
    }

    [Fact]
    public async Task Udp_payload_over_65507_is_refused()
    {
        var pair = new StackPair(TimeProvider.System);
        await using var a = pair.A.BindUdp(1);
        await Assert.ThrowsAsync<ArgumentException>(async () => await a.SendToAsync(new byte[65508], At(EndPointB, 2)));
    }

    [Fact]
    public async Task Crafted_fragments_from_the_peer_reassemble_into_one_datagram()
    {
        var pair = new StackPair(TimeProvider.System);
        await using var b = pair.B.BindUdp(7000);
        var payload = Enumerable.Range(0, 3000).Select(i => (byte)(i * 13)).ToArray();
        var packet = WireGen.UdpPacket(StackPair.AddressA, StackPair.AddressB, 4242, 7000, payload, id: 77);
        var fragments = WireGen.Fragment(packet, [1000, 2000, 2504]);
        foreach (var fragment in Enumerable.Reverse(fragments))
        {
            pair.DeliverToB(fragment, padding: 5);
        }

        var receive = new byte[4000];
        var got = await b.ReceiveFromAsync(receive);
        Assert.Equal(3000, got.ReceivedBytes);
        Assert.True(receive.AsSpan(0, 3000).SequenceEqual(payload));
        Assert.Equal(At(EndPointA, 4242), got.RemoteEndPoint);
        Assert.Equal(0, pair.DropsB.Total);
    }

    [Fact]
    public async Task Full_receive_queue_drops_and_counts_queue_full()
    {
        var pair = new StackPair(TimeProvider.System, queueCapacity: 4);
        await using var a = pair.A.BindUdp(1);
        await using var b = pair.B.BindUdp(2);
        for (byte i = 0; i < 10; i++)
        {
            await a.SendToAsync(new[] { i }, At(EndPointB, 2));
        }

        Assert.Equal(6, pair.DropsB.Get(DropReason.QueueFull));
        var receive = new byte[10];
        for (byte i = 0; i < 4; i++)
        {
            var got = await b.ReceiveFromAsync(receive);
            Assert.Equal(1, got.ReceivedBytes);
            Assert.Equal(i, receive[0]);
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await b.ReceiveFromAsync(receive, cts.Token));
    }

    [Fact]
    public async Task Small_receive_buffer_truncates()
    {
        var pair = new StackPair(TimeProvider.System);
        await using var a = pair.A.BindUdp(1);
        await using var b = pair.B.BindUdp(2);
        await a.SendToAsync(new byte[] { 1, 2, 3, 4, 5 }, At(EndPointB, 2));
        var receive = new byte[3];
        var got = await b.ReceiveFromAsync(receive);
        Assert.Equal(3, got.ReceivedBytes);
        Assert.Equal(new byte[] { 1, 2, 3 }, receive);
    }

    [Fact]
    public async Task Closed_port_gets_icmp_port_unreachable_quoting_the_datagram()
    {
        var pair = new StackPair(TimeProvider.System);
        await using var a = pair.A.BindUdp(3333);
        await a.SendToAsync(new byte[] { 9, 9, 9 }, At(EndPointB, 9999));

        Assert.Equal(1, pair.DropsB.Get(DropReason.PortUnreachable));
        var error = Assert.Single(pair.LinkBtoA.Sent);
        Assert.True(Ipv4Packet.TryCreate(error, out var ip));
        Assert.Equal(IpProtocol.Icmp, ip.Protocol);
        Assert.Equal(StackPair.AddressA, ip.Destination);
        Assert.True(IcmpV4Packet.TryCreate(ip.Payload, out var icmp) && icmp.VerifyChecksum());
        Assert.Equal(IcmpV4Type.DestinationUnreachable, icmp.Type);
        Assert.Equal((byte)IcmpV4UnreachableCode.PortUnreachable, icmp.Code);
        Assert.True(icmp.Payload.SequenceEqual(pair.LinkAtoB.Sent[0]));
        Assert.Equal(0, pair.DropsA.Total); // A consumed the error
    }

    [Fact]
    public async Task Icmp_errors_are_rate_limited()
    {
        var time = new FakeTimeProvider();
        var pair = new StackPair(time, icmpErrorsPerSecond: 10);
        await using var a = pair.A.BindUdp(3333);
        for (int i = 0; i < 30; i++)
        {
            await a.SendToAsync(new byte[] { 1 }, At(EndPointB, 9999));
        }

        Assert.Equal(30, pair.DropsB.Get(DropReason.PortUnreachable));
        Assert.Equal(10, pair.LinkBtoA.Sent.Count);
        time.Advance(TimeSpan.FromMilliseconds(500));
        for (int i = 0; i < 30; i++)
        {
            await a.SendToAsync(new byte[] { 1 }, At(EndPointB, 9999));
        }

        Assert.Equal(15, pair.LinkBtoA.Sent.Count);
    }

    [Fact]
    public async Task Bind_rules_port_in_use_ephemeral_and_dispose()
    {
        var pair = new StackPair(TimeProvider.System);
        var first = pair.A.BindUdp(53);
        var ex = Assert.Throws<SocketException>(() => pair.A.BindUdp(53));
        Assert.Equal(SocketError.AddressAlreadyInUse, ex.SocketErrorCode);
        Assert.Throws<ArgumentOutOfRangeException>(() => pair.A.BindUdp(65536));

        var pending = first.ReceiveFromAsync(new byte[10]).AsTask();
        await first.DisposeAsync();
        await first.DisposeAsync(); // twice is fine
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pending);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await first.ReceiveFromAsync(new byte[10]));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await first.SendToAsync(new byte[1], At(EndPointB, 1)));

        await using var again = pair.A.BindUdp(53);
        var ports = new HashSet<int>();
        for (int i = 0; i < 50; i++)
        {
            var s = pair.A.BindUdp(0);
            Assert.InRange(s.LocalEndPoint.Port, 49152, 65535);
            Assert.True(ports.Add(s.LocalEndPoint.Port));
        }
    }

    [Fact]
    public async Task Queued_datagrams_are_returned_when_a_socket_closes_and_later_ones_are_port_unreachable()
    {
        var pair = new StackPair(TimeProvider.System);
        await using var a = pair.A.BindUdp(1);
        var b = pair.B.BindUdp(2);
        await a.SendToAsync(new byte[] { 1 }, At(EndPointB, 2));
        await b.DisposeAsync();
        await a.SendToAsync(new byte[] { 1 }, At(EndPointB, 2));
        Assert.Equal(1, pair.DropsB.Get(DropReason.PortUnreachable));
    }

    [Fact]
    public void Crafted_drops_are_counted_by_reason()
    {
        var pair = new StackPair(TimeProvider.System);
        using var b = pair.B.BindUdp(2).AsDisposable();

        // Not for this node.
        pair.DeliverToB(WireGen.UdpPacket(StackPair.AddressA, 0x64400003, 1, 2, [1]));
        Assert.Equal(1, pair.DropsB.Get(DropReason.NotForThisNode));

        // Bad IP header checksum.
        var bad = WireGen.UdpPacket(StackPair.AddressA, StackPair.AddressB, 1, 2, [1]);
        bad[10] ^= 1;
        pair.DeliverToB(bad);
        Assert.Equal(1, pair.DropsB.Get(DropReason.BadChecksum));

        // Bad UDP checksum.
        bad = WireGen.UdpPacket(StackPair.AddressA, StackPair.AddressB, 1, 2, [1, 2, 3]);
        bad[^1] ^= 1;
        pair.DeliverToB(bad);
        Assert.Equal(2, pair.DropsB.Get(DropReason.BadChecksum));

        // Garbage and truncation.
        pair.DeliverToB([1, 2, 3]);
        pair.DeliverToB([]);
        Assert.Equal(2, pair.DropsB.Get(DropReason.MalformedPacket));

        // IPv6 is not handled yet.
        var v6 = new byte[40];
        v6[0] = 0x60;
        pair.DeliverToB(v6);
        Assert.Equal(1, pair.DropsB.Get(DropReason.UnsupportedProtocol));

        // A TCP header whose data offset is zero: malformed, dropped, no reply (no RST, no ICMP).
        pair.DeliverToB(WireGen.Ipv4Packet(new Ipv4Header(StackPair.AddressA, StackPair.AddressB, IpProtocol.Tcp, 0), new byte[20]));
        Assert.Equal(3, pair.DropsB.Get(DropReason.MalformedPacket));
        Assert.Empty(pair.LinkBtoA.Sent);

        // GRE: unsupported, answered with protocol unreachable.
        pair.DeliverToB(WireGen.Ipv4Packet(new Ipv4Header(StackPair.AddressA, StackPair.AddressB, 47, 0), new byte[8]));
        Assert.Equal(2, pair.DropsB.Get(DropReason.UnsupportedProtocol));
        var error = Assert.Single(pair.LinkBtoA.Sent);
        Assert.True(Ipv4Packet.TryCreate(error, out var ip));
        Assert.True(IcmpV4Packet.TryCreate(ip.Payload, out var icmp));
        Assert.Equal((byte)IcmpV4UnreachableCode.ProtocolUnreachable, icmp.Code);
        Assert.Equal(0, pair.LoggerB.Errors);
    }

    [Fact]
    public async Task Padded_packet_uses_the_ip_total_length()
    {
        var pair = new StackPair(TimeProvider.System);
        await using var b = pair.B.BindUdp(2);
        pair.DeliverToB(WireGen.UdpPacket(StackPair.AddressA, StackPair.AddressB, 1, 2, [7, 8, 9]), padding: 13);
        var receive = new byte[100];
        var got = await b.ReceiveFromAsync(receive);
        Assert.Equal(3, got.ReceivedBytes);
    }

    [Fact]
    public void Echo_request_with_ip_options_and_no_head_room_is_answered()
    {
        var pair = new StackPair(TimeProvider.System);
        var echo = new byte[8 + 4];
        new IcmpV4Echo(true, 1, 2).Emit(echo);
        var packet = new byte[24 + echo.Length];
        new Ipv4Header(StackPair.AddressA, StackPair.AddressB, IpProtocol.Icmp, echo.Length + 4).Emit(packet);
        packet[0] = 0x46;
        echo.CopyTo(packet, 24);
        Ipv4Packet.TryCreate(packet, out var view);
        view.FillHeaderChecksum();

        var buffer = pair.Pool.Rent();
        buffer.Offset = 0; // no head room at all: the stack must copy
        buffer.Length = packet.Length;
        packet.CopyTo(buffer.Span);
        pair.B.DeliverInbound(buffer);

        var reply = Assert.Single(pair.LinkBtoA.Sent);
        Assert.True(Ipv4Packet.TryCreate(reply, out var ip));
        Assert.Equal(20, ip.HeaderLength);
        Assert.True(IcmpV4Packet.TryCreate(ip.Payload, out var icmp));
        Assert.Equal(IcmpV4Type.EchoReply, icmp.Type);
        Assert.Equal(12, icmp.Buffer.Length);
    }

    [Property]
    public Property Random_and_mutated_packets_never_throw_and_are_counted()
    {
        var valid = new[]
        {
            WireGen.UdpPacket(StackPair.AddressA, StackPair.AddressB, 1, 2, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            WireGen.Fragment(WireGen.UdpPacket(StackPair.AddressA, StackPair.AddressB, 1, 2, new byte[100]), [48])[1],
            WireGen.Ipv4Packet(new Ipv4Header(StackPair.AddressA, StackPair.AddressB, IpProtocol.Icmp, 0), [8, 0, 0, 0, 0, 1, 0, 1]),
        };

        // Random bytes, and valid packets with random bytes overwritten (the IP checksum refilled half the time,
        // so the mutation reaches the layers above).
        var mutated = from template in Gen.Elements(valid)
                      from edits in Gen.ListOf(Gen.Zip(Gen.Choose(0, 200), WireGen.Byte), 4)
                      from refill in Gen.Elements(true, false)
                      from cut in Gen.Choose(0, 200)
                      select Mutate(template, edits, refill, cut);
        var sequences = Gen.OneOf(WireGen.Bytes(100), mutated).ListOf();
        return Prop.ForAll(sequences.ToArbitrary(), sequence =>
        {
            // Each case is a fresh stack that takes the whole sequence, so what one packet leaves behind (a held
            // fragment, a queued datagram) meets the next, and a shrunk counterexample replays on its own.
            var pair = new StackPair(TimeProvider.System);
            var b = pair.B.BindUdp(2);
            using var closeB = b.AsDisposable();
            foreach (var data in sequence)
            {
                long before = pair.DropsB.Total;
                pair.DeliverToB(data);
                while (TryDrain(b))
                {
                }

                // Every packet is consumed one way or another; none makes the stack log an error.
                if (pair.LoggerB.Errors != 0 || pair.DropsB.Total < before)
                {
                    return false;
                }
            }

            // The counters still count after the sequence: three bytes cannot be an IPv4 packet.
            long beforeGarbage = pair.DropsB.Total;
            pair.DeliverToB([0x45, 0, 0]);
            return pair.DropsB.Total == beforeGarbage + 1 && pair.LoggerB.Errors == 0;
        });
    }

    private static bool TryDrain(MeshUdpSocket socket)
    {
        // A cancelled token: takes a queued datagram if there is one, never leaves a receive waiting.
        try
        {
            return socket.ReceiveFromAsync(new byte[70000], new CancellationToken(canceled: true)).AsTask().IsCompletedSuccessfully;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static byte[] Mutate(byte[] template, IEnumerable<(int, byte)> edits, bool refill, int cut)
    {
        var bytes = (byte[])template.Clone();
        foreach (var (index, value) in edits)
        {
            if (index < bytes.Length)
            {
                bytes[index] = value;
            }
        }

        if (cut < bytes.Length && cut % 3 == 0)
        {
            bytes = bytes[..cut];
        }

        if (refill && Ipv4Packet.TryCreate(bytes, out var ip))
        {
            ip.FillHeaderChecksum();
        }

        return bytes;
    }
}

internal static class SocketTestExtensions
{
    public static IDisposable AsDisposable(this MeshUdpSocket socket) => new Closer(socket);

    private sealed class Closer(MeshUdpSocket socket) : IDisposable
    {
        public void Dispose() => socket.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}

public class NetStackReassemblyTests
{
    [Fact]
    public void Incomplete_fragments_expire_on_later_traffic()
    {
        var time = new FakeTimeProvider();
        var pair = new StackPair(time);
        var packet = WireGen.UdpPacket(StackPair.AddressA, StackPair.AddressB, 1, 2, new byte[100]);
        var fragments = WireGen.Fragment(packet, [48]);
        pair.DeliverToB(fragments[0]);
        Assert.Equal(0, pair.DropsB.Get(DropReason.Fragment));
        time.Advance(TimeSpan.FromSeconds(31));
        pair.DeliverToB(WireGen.UdpPacket(StackPair.AddressA, StackPair.AddressB, 1, 2, [1])); // unrelated datagram
        Assert.Equal(1, pair.DropsB.Get(DropReason.Fragment));
        pair.DeliverToB(fragments[1]); // too late: starts a new, incomplete datagram
        Assert.Equal(1, pair.DropsB.Get(DropReason.Fragment));
        Assert.Equal(0, pair.LoggerB.Errors);
    }
}
