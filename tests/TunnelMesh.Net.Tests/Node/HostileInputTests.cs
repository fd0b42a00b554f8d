using System.Net;
using System.Net.Sockets;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.Node;

/// <summary>Floods and garbage at a node's UDP port: everything is dropped and counted, the session survives.</summary>
public sealed class HostileInputTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_handshake_flood_is_answered_with_cookies_while_the_session_keeps_working()
    {
        await using var pair = await NodePair.StartAsync();
        pair.B.Device.UnderLoadThreshold = 20;
        await pair.A.PingAsync(NodePair.IpB, Limit);

        // The attacker knows B's public key (so mac1 is right) but is not one of B's peers.
        var attacker = new LocalIdentity(NodePrivateKey.Generate());
        var handshake = new NoiseHandshake(attacker, pair.B.PublicKey, new byte[32]);
        var cookies = new CookieGenerator(pair.B.PublicKey, TimeProvider.System);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var target = new IPEndPoint(IPAddress.Loopback, pair.B.ListenPort);

        long cookieReplies = 0;
        var repliesByIndex = new System.Collections.Concurrent.ConcurrentDictionary<uint, byte[]>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var receiver = Task.Run(async () =>
        {
            var buffer = new byte[256];
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    int n = await socket.ReceiveAsync(buffer, SocketFlags.None, stop.Token);
                    if (n == 64 && buffer[0] == 3)
                    {
                        Interlocked.Increment(ref cookieReplies);
                        repliesByIndex[System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(4))] = buffer[..n];
                    }
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        });

        const int Rounds = 10, PerRound = 200;
        var message = new byte[148];
        for (int round = 0; round < Rounds; round++)
        {
            for (int i = 0; i < PerRound; i++)
            {
                handshake.CreateInitiation(message, (uint)(round * PerRound + i), Tai64N.FromDateTimeOffset(DateTimeOffset.UtcNow.AddTicks(round * PerRound + i)));
                cookies.AddMacs(message);
                socket.SendTo(message, target);
            }

            // The established session keeps working in the middle of the flood.
            await pair.A.PingAsync(NodePair.IpB, Limit);
        }

        // Every flood message is accounted for: refused for want of a cookie, or (below the load
        // threshold) fully processed and refused as from an unknown key.
        await TaskTimeouts.Until(
            () => pair.B.Drops.Get(DropReason.CookieRequired) + pair.B.Drops.Get(DropReason.HandshakeFailed) == Rounds * PerRound,
            Limit, "B accounting for every flood message");
        Assert.True(pair.B.Drops.Get(DropReason.CookieRequired) > Rounds * PerRound / 2, "most of the flood should have been answered with cookies");
        await TaskTimeouts.Until(() => Interlocked.Read(ref cookieReplies) > 0, Limit, "a cookie reply at the attacker");

        // The cookie is real. A cookie reply decrypts only against the mac1 of the last message the
        // generator sent (as in wireguard-go), so: a short burst keeps B under load, then one marked
        // initiation, whose own reply (matched by receiver index) the attacker consumes.
        // Cookie replies to an attacker may be lost like any datagram (its socket buffer is small),
        // so try a few times, each with a fresh burst that keeps B under load.
        uint marked = 0;
        int extraSent = 0;
        for (int attempt = 0; attempt < 5 && marked == 0; attempt++)
        {
            for (int i = 0; i < 50; i++)
            {
                handshake.CreateInitiation(message, (uint)(50000 + (attempt * 100) + i), Tai64N.FromDateTimeOffset(DateTimeOffset.UtcNow));
                cookies.AddMacs(message);
                socket.SendTo(message, target);
            }

            extraSent += 51;
            uint candidate = 99900u + (uint)attempt;
            handshake.CreateInitiation(message, candidate, Tai64N.FromDateTimeOffset(DateTimeOffset.UtcNow));
            cookies.AddMacs(message);
            socket.SendTo(message, target);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(4);
            while (!repliesByIndex.ContainsKey(candidate) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(5);
            }

            if (repliesByIndex.ContainsKey(candidate))
            {
                marked = candidate;
            }
        }

        Assert.True(marked != 0, "no cookie reply reached the attacker for its last initiation");
        Assert.True(cookies.ConsumeReply(repliesByIndex[marked]), "the cookie reply did not decrypt");
        await TaskTimeouts.Until(
            () => pair.B.Drops.Get(DropReason.CookieRequired) + pair.B.Drops.Get(DropReason.HandshakeFailed) == Rounds * PerRound + extraSent,
            Limit, "B accounting for the burst");

        // With the cookie, the next initiation passes mac2: no longer refused for want of a cookie;
        // it fails later, as from an unknown key, or is rate-limited.
        long cookieRequired = pair.B.Drops.Get(DropReason.CookieRequired);
        long later = pair.B.Drops.Get(DropReason.HandshakeFailed) + pair.B.Drops.Get(DropReason.HandshakeRateLimited);
        handshake.CreateInitiation(message, 100000, Tai64N.FromDateTimeOffset(DateTimeOffset.UtcNow));
        cookies.AddMacs(message);
        socket.SendTo(message, target);
        await TaskTimeouts.Until(
            () => pair.B.Drops.Get(DropReason.HandshakeFailed) + pair.B.Drops.Get(DropReason.HandshakeRateLimited) == later + 1,
            Limit, "the cookie-bearing initiation reaching the handshake stage");
        Assert.Equal(cookieRequired, pair.B.Drops.Get(DropReason.CookieRequired));

        await pair.A.PingAsync(NodePair.IpB, Limit);
        Assert.Equal(1, pair.A.GetStatistics().Peers.Single().Handshakes);
        stop.Cancel();
        await receiver;
    }

    [Fact]
    public async Task A_hundred_thousand_random_and_mutated_datagrams_are_dropped_counted_and_harmless()
    {
        RecordingTransport? recorder = null;
        InjectingTransport? injector = null;
        await using var pair = await NodePair.StartAsync(
            transportA: (o, pool, drops) => recorder = new RecordingTransport(Udp(o, pool, drops)),
            transportB: (o, pool, drops) => injector = new InjectingTransport(Udp(o, pool, drops), pool));
        await pair.A.PingAsync(NodePair.IpB, Limit);
        await using (var a = pair.A.ListenUdp(1000))
        await using (var b = pair.B.ListenUdp(1000))
        {
            await a.SendToAsync(new byte[100], new IPEndPoint(NodePair.IpB, 1000)); // one UDP packet too
            await b.ReceiveFromAsync(new byte[200]).AsTask().Within(Limit, "the UDP datagram at B");
        }

        // Real bytes our node produced: an initiation, transport messages with data, keepalives.
        var captured = recorder!.Sent;
        Assert.Contains(captured, d => d[0] == 1 && d.Length == 148);
        Assert.Contains(captured, d => d[0] == 4);

        long before = pair.B.Drops.Total;
        var random = new Random(20261122);
        var buffer = new byte[2000];
        const int Total = 100_000, ThroughSocket = 5_000, SocketChunk = 25, InjectBatch = 64;

        // Most go straight into B's receive path, in batches, as its UDP receive thread would deliver them.
        var source = TunnelMesh.Net.Transport.Endpoint.FromIPv4(0x7F000001, 40000);
        for (int sent = 0; sent < Total - ThroughSocket; sent += InjectBatch)
        {
            var batch = new List<byte[]>();
            for (int i = 0; i < InjectBatch && sent + i < Total - ThroughSocket; i++)
            {
                batch.Add(buffer.AsSpan(0, NextDatagram(random, captured, buffer)).ToArray());
            }

            injector!.Inject(batch, source);
        }

        Assert.Equal(Total - ThroughSocket, pair.B.Drops.Total - before);

        // The rest through the real UDP socket, paced so the kernel's receive buffer never overflows.
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var target = new IPEndPoint(IPAddress.Loopback, pair.B.ListenPort);
        for (int sent = Total - ThroughSocket; sent < Total;)
        {
            for (int i = 0; i < SocketChunk; i++, sent++)
            {
                socket.SendTo(buffer.AsSpan(0, NextDatagram(random, captured, buffer)), SocketFlags.None, target);
            }

            int expected = sent;
            await TaskTimeouts.Until(() => pair.B.Drops.Total - before == expected, Limit, $"B accounting for {expected} datagrams");
        }

        Assert.Equal(Total, pair.B.Drops.Total - before);
        await pair.A.PingAsync(NodePair.IpB, Limit);
        await pair.B.PingAsync(NodePair.IpA, Limit);
        Assert.Equal(1, pair.B.GetStatistics().Peers.Single().Handshakes);
    }

    private static UdpTransport Udp(MeshNodeOptions o, PacketBufferPool pool, DropCounters drops) =>
        new(new UdpTransportOptions { BindAddress = o.ListenAddress, Port = o.ListenPort, Pool = pool, Drops = drops });

    private static int NextDatagram(Random random, IReadOnlyList<byte[]> captured, byte[] buffer)
    {
        if (random.Next(2) == 0)
        {
            // Random bytes, often dressed as a WireGuard message type with zero reserved bytes.
            int length = random.Next(0, 1600);
            random.NextBytes(buffer.AsSpan(0, length));
            if (length >= 4 && random.Next(3) > 0)
            {
                buffer[0] = (byte)random.Next(0, 6);
                buffer[1] = buffer[2] = buffer[3] = 0;
            }

            int[] exact = [148, 92, 64, 32, 48];
            return random.Next(4) == 0 && length >= 148 ? exact[random.Next(exact.Length)] : length;
        }

        var source = captured[random.Next(captured.Count)];
        source.CopyTo(buffer, 0);
        int n = source.Length;
        switch (random.Next(5))
        {
            case 0: // replay as is
                return n;
            case 1: // flip a few bits
                for (int k = random.Next(1, 5); k > 0; k--)
                {
                    buffer[random.Next(n)] ^= (byte)(1 << random.Next(8));
                }

                return n;
            case 2: // truncate
                return random.Next(0, n);
            case 3: // extend
                int extra = random.Next(1, 64);
                random.NextBytes(buffer.AsSpan(n, extra));
                return n + extra;
            default: // another type byte
                buffer[0] = (byte)random.Next(0, 256);
                return n;
        }
    }
}
