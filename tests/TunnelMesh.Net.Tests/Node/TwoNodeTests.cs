using Microsoft.Extensions.Logging;
using System.Buffers.Binary;
using System.Net;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.Node;

/// <summary>Two MeshNodes in one process over loopback UDP (wireguard-go's basic device test).</summary>
public sealed class TwoNodeTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Ping_and_udp_both_ways()
    {
        var logs = new ListLoggerProvider();
        using var fa = Microsoft.Extensions.Logging.LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Trace));
        using var fb = Microsoft.Extensions.Logging.LoggerFactory.Create(b => b.AddProvider(new ForwardingProvider(logs, "B.")).SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Trace));
        await using var pair = await NodePair.StartAsync(loggerA: fa, loggerB: fb);
        var rtt = await pair.A.PingAsync(NodePair.IpB, Limit);
        Assert.True(rtt > TimeSpan.Zero);
        await pair.B.PingAsync(NodePair.IpA, Limit);

        await using var a = pair.A.ListenUdp(4000);
        await using var b = pair.B.ListenUdp(0);
        var bEndPoint = new IPEndPoint(NodePair.IpB, b.LocalEndPoint.Port);
        var buffer = new byte[2048];
        for (int size = 0; size <= 1392; size += 87)
        {
            var payload = new byte[size];
            Random.Shared.NextBytes(payload);
            await a.SendToAsync(payload, bEndPoint);
            var r = await b.ReceiveFromAsync(buffer).AsTask().Within(Limit, $"a {size}-byte datagram A->B");
            Assert.Equal(payload, buffer[..r.ReceivedBytes]);
            Assert.Equal(new IPEndPoint(NodePair.IpA, 4000), r.RemoteEndPoint);

            await b.SendToAsync(payload, r.RemoteEndPoint);
            var back = await a.ReceiveFromAsync(buffer).AsTask().Within(Limit, $"a {size}-byte datagram B->A");
            Assert.Equal(payload, buffer[..back.ReceivedBytes]);
        }

        var sa = pair.A.GetStatistics().Peers.Single();
        var sb = pair.B.GetStatistics().Peers.Single();
        Assert.True(sa.Handshakes == 1 && sb.Handshakes == 1, $"handshakes A {sa.Handshakes} B {sb.Handshakes}:\n{string.Join("\n", logs.Lines.Where(l => !l.Contains("Dropped")))}");
        Assert.True(sa.SentBytes > 0 && sa.ReceivedBytes > 0);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, pair.A.ListenPort), sb.Endpoint); // learned from A's packets
        Assert.Equal(0, pair.A.GetStatistics().TotalDrops);
        Assert.Equal(0, pair.B.GetStatistics().TotalDrops);
    }

    [Fact]
    public async Task Initiator_rekeys_after_120_seconds_and_sessions_expire_after_180()
    {
        var clock = new FakeTimeProvider();
        var logs = new ListLoggerProvider();
        using var fa = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        using var fb = LoggerFactory.Create(b => b.AddProvider(new ForwardingProvider(logs, "B.")).SetMinimumLevel(LogLevel.Debug));
        await using var pair = await NodePair.StartAsync(clock, loggerA: fa, loggerB: fb);
        await Ping(pair.A, NodePair.IpB);
        var firstKeypair = pair.A.Device.Peers.Single().Current;
        Assert.NotNull(firstKeypair);

        // 121 s later, the next packet still goes out on the old keypair but starts a new handshake.
        await AdvanceLettingKeepalivesLand(clock, pair, TimeSpan.FromSeconds(121));
        var rekeyed = NodePair.NextHandshake(pair.B);
        await Ping(pair.A, NodePair.IpB);
        await rekeyed.Within(Limit, () => $"a rekey handshake ({Describe(pair)})\n{string.Join("\n", logs.Lines)}");
        await Ping(pair.A, NodePair.IpB);
        var peerA = pair.A.Device.Peers.Single();
        Assert.NotSame(firstKeypair, peerA.Current);
        Assert.Same(firstKeypair, peerA.Previous);
        Assert.Equal(2, pair.A.GetStatistics().Peers.Single().Handshakes);

        // 181 s of silence: no keypair may be used any more; the next ping waits for a fresh handshake.
        await AdvanceLettingKeepalivesLand(clock, pair, TimeSpan.FromSeconds(181));
        var fresh = NodePair.NextHandshake(pair.A);
        await Ping(pair.A, NodePair.IpB);
        await fresh.Within(Limit, "a handshake after expiry");
        Assert.Equal(3, pair.A.GetStatistics().Peers.Single().Handshakes);
        Assert.Equal(3, pair.B.GetStatistics().Peers.Single().Handshakes);
    }

    // The manual clock fires timers at once while packets travel in real time. After a ping, A owes
    // B a passive keepalive at +10 s, and B would start a handshake of its own at +15 s if that
    // keepalive had not arrived: so step to +10.5 s, let the keepalive land, then go on.
    private static async Task AdvanceLettingKeepalivesLand(FakeTimeProvider clock, NodePair pair, TimeSpan total)
    {
        var first = TimeSpan.FromSeconds(10.5);
        var keepalive = NodePair.NextKeepalive(pair.B);
        clock.Advance(first);
        await keepalive.Within(Limit, "A's passive keepalive");
        clock.Advance(total - first);
    }

    private static string Describe(NodePair pair) => string.Join("; ", new[] { ("A", pair.A), ("B", pair.B) }.Select(n =>
    {
        var st = n.Item2.GetStatistics();
        var peer = n.Item2.Device.Peers.Single();
        return $"{n.Item1}: handshakes {st.Peers.Single().Handshakes}, current initiator {peer.Current?.IsInitiator}, next {peer.Next is not null}, drops [{string.Join(",", st.Drops)}]";
    }));

    // Under a manual clock a ping's own timeout never fires, so bound it in real time.
    private static Task<TimeSpan> Ping(MeshNode node, IPAddress address) =>
        node.PingAsync(address, Limit).Within(Limit, $"a ping to {address}");

    [Fact]
    public async Task Responder_sends_a_passive_keepalive_10_seconds_after_receiving_data()
    {
        var clock = new FakeTimeProvider();
        await using var pair = await NodePair.StartAsync(clock);
        await Ping(pair.A, NodePair.IpB); // session up, both sides have sent

        await using var a = pair.A.ListenUdp(4000);
        await using var b = pair.B.ListenUdp(5000);
        var arrived = new byte[64];
        await a.SendToAsync(new byte[] { 1, 2, 3 }, new IPEndPoint(NodePair.IpB, 5000));
        await b.ReceiveFromAsync(arrived).AsTask().Within(Limit, "the datagram at B");

        // B's application stays silent: after KEEPALIVE_TIMEOUT, B's device sends an empty message.
        var keepalive = NodePair.NextKeepalive(pair.A);
        clock.Advance(TimeSpan.FromSeconds(9));
        Assert.False(keepalive.IsCompleted);
        clock.Advance(TimeSpan.FromSeconds(1.5));
        await keepalive.Within(Limit, "B's passive keepalive");
    }

    [Fact]
    public async Task Persistent_keepalive_brings_the_session_up_and_keeps_sending()
    {
        var clock = new FakeTimeProvider();
        await using var pair = await NodePair.StartAsync(clock, p => p.PersistentKeepalive = TimeSpan.FromSeconds(25));

        // With no application traffic at all, A started a handshake on its own.
        await TaskTimeouts.Until(() => pair.B.GetStatistics().Peers.Single().Handshakes == 1, Limit, "the handshake started by the persistent keepalive");
        for (int i = 0; i < 3; i++)
        {
            var keepalive = NodePair.NextKeepalive(pair.B);
            clock.Advance(TimeSpan.FromSeconds(25));
            await keepalive.Within(Limit, $"persistent keepalive #{i + 1}");
        }
    }

    [Fact]
    public async Task A_packet_with_a_source_outside_the_peers_allowed_ips_is_dropped()
    {
        await using var pair = await NodePair.StartAsync();
        await pair.A.PingAsync(NodePair.IpB, Limit);
        long before = pair.B.Drops.Get(DropReason.SourceNotAllowed);

        // A (or anyone holding A's key) sends a packet claiming to come from 100.64.0.99.
        var packet = pair.A.Device.Pool.Rent();
        var ip = packet.Available[..28];
        ip.Clear();
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], 28);
        ip[8] = 64;
        ip[9] = 17;
        IPAddress.Parse("100.64.0.99").TryWriteBytes(ip[12..], out _);
        NodePair.IpB.TryWriteBytes(ip[16..], out _);
        packet.Length = 28;
        pair.A.Device.SendPacket(packet);
        await TaskTimeouts.Until(() => pair.B.Drops.Get(DropReason.SourceNotAllowed) == before + 1, Limit, "the spoofed packet's drop at B");
    }

    [Fact]
    public async Task A_restarted_node_with_the_same_key_is_reached_again_at_its_new_port()
    {
        await using var pair = await NodePair.StartAsync();
        await pair.A.PingAsync(NodePair.IpB, Limit);
        await pair.A.DisposeAsync();

        // Same key, new process state, new UDP port: its initiation is newer, B roams to the new endpoint.
        await using var again = new MeshNode(NodePair.Options(pair.KeyA, NodePair.IpA, pair.KeyB.PublicKey, NodePair.IpB, new IPEndPoint(IPAddress.Loopback, pair.B.ListenPort), null));
        await again.StartAsync();
        await again.PingAsync(NodePair.IpB, Limit);
        await pair.B.PingAsync(NodePair.IpA, Limit);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, again.ListenPort), pair.B.GetStatistics().Peers.Single().Endpoint);
    }
}
