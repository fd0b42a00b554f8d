using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.Node;

public sealed class HandshakeTimingTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task An_unanswered_handshake_is_retried_every_5_seconds_plus_jitter_then_given_up_after_90()
    {
        var clock = new FakeTimeProvider();
        // The "peer" is a socket that never answers; it only counts what arrives.
        using var sink = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        sink.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var peerKey = NodePrivateKey.Generate().PublicKey;
        var options = NodePair.Options(NodePrivateKey.Generate(), NodePair.IpA, peerKey, NodePair.IpB, (IPEndPoint)sink.LocalEndPoint!, null);
        await using var node = new MeshNode(options, null, clock, null);
        await node.StartAsync();
        await using var udp = node.ListenUdp(0);

        // Data for the peer is queued and starts the first initiation.
        await udp.SendToAsync(new byte[10], new IPEndPoint(NodePair.IpB, 9));
        var arrivals = new List<(TimeSpan At, uint Sender)>();
        var buffer = new byte[256];
        TimeSpan now = TimeSpan.Zero;
        void Collect()
        {
            // Loopback delivery is synchronous with the send, and timers fire inside Advance.
            while (sink.Available > 0)
            {
                int n = sink.Receive(buffer);
                Assert.Equal(148, n);
                Assert.Equal(1, buffer[0]);
                arrivals.Add((now, BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(4))));
            }
        }

        Collect();
        long droppedBefore = node.Drops.Get(DropReason.NoSession);
        for (int step = 0; step < 440; step++) // 110 s
        {
            clock.Advance(TimeSpan.FromMilliseconds(250));
            now += TimeSpan.FromMilliseconds(250);
            Collect();
        }

        // One initiation, then REKEY_ATTEMPT_TIME / REKEY_TIMEOUT = 18 retries, each a fresh handshake.
        Assert.True(arrivals.Count == 19, string.Join(", ", arrivals.Select(a => a.At.TotalSeconds)) + $" drops {string.Join(",", node.Drops.Snapshot())}");
        Assert.Equal(19, arrivals.Select(a => a.Sender).Distinct().Count());
        for (int i = 1; i < arrivals.Count; i++)
        {
            var gap = arrivals[i].At - arrivals[i - 1].At;
            Assert.InRange(gap, TimeSpan.FromSeconds(4.75), TimeSpan.FromSeconds(5.6)); // 5 s + up to 333 ms of jitter (250 ms steps)
        }

        // Then it gives up and drops what was queued.
        Assert.Equal(droppedBefore + 1, node.Drops.Get(DropReason.NoSession));
        Assert.Equal(0, node.Device.Peers.Single().StagedCount);
    }

    [Fact]
    public async Task A_peer_is_held_to_50_initiations_per_second()
    {
        await using var pair = await NodePair.StartAsync();
        await pair.A.PingAsync(NodePair.IpB, Limit);

        // Fresh, valid initiations made with A's own key, 100 of them at once.
        var identity = new LocalIdentity(pair.KeyA);
        var handshake = new NoiseHandshake(identity, pair.B.PublicKey, new byte[32]);
        var cookies = new CookieGenerator(pair.B.PublicKey, TimeProvider.System);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var target = new IPEndPoint(IPAddress.Loopback, pair.B.ListenPort);
        var message = new byte[148];
        var start = DateTimeOffset.UtcNow.AddMinutes(1);
        long limitedBefore = pair.B.Drops.Get(DropReason.HandshakeRateLimited);
        long answeredBefore = pair.B.Device.HandshakeMessagesReceived;
        for (int i = 0; i < 100; i++)
        {
            handshake.CreateInitiation(message, (uint)(1000 + i), Tai64N.FromDateTimeOffset(start.AddSeconds(i)));
            cookies.AddMacs(message);
            socket.SendTo(message, target);
        }

        await TaskTimeouts.Until(() => pair.B.Device.HandshakeMessagesReceived - answeredBefore == 100, Limit, "B receiving the burst");
        long limited = pair.B.Drops.Get(DropReason.HandshakeRateLimited) - limitedBefore;
        // A burst of 100 arrives in far less than 2 s, so far fewer than 100 may pass the 20 ms spacing.
        Assert.True(limited > 50, $"only {limited} of 100 initiations were rate-limited");
    }
}
