using System.Net;
using System.Runtime.CompilerServices;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Server.Tests.Relay;

/// <summary>Two MeshNodes whose direct UDP a decorator can block: they talk through the coordinator's relay, move to direct, fall back.</summary>
public sealed class RelayPathTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);
    private static readonly IPAddress IpA = IPAddress.Parse("100.64.7.1");
    private static readonly IPAddress IpB = IPAddress.Parse("100.64.7.2");
    private static readonly PathTiming FastPaths = new(TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(1500));

    [Fact]
    public async Task Blocked_UDP_goes_through_the_relay_then_direct_when_unblocked_and_back_when_blocked_again()
    {
        await using var host = await RelayTestHost.StartAsync();
        var keyA = NodePrivateKey.Generate();
        var keyB = NodePrivateKey.Generate();
        var blocked = new StrongBox<bool>(true);
        FaultInjectingTransport? udpA = null;
        FaultInjectingTransport? udpB = null;

        await using var b = new MeshNode(Options(keyB, IpB, keyA.PublicKey, IpA, null, host), null, null, Blocking(blocked, t => udpB = t));
        await b.StartAsync();
        await using var a = new MeshNode(Options(keyA, IpA, keyB.PublicKey, IpB, new IPEndPoint(IPAddress.Loopback, b.ListenPort), host), null, null, Blocking(blocked, t => udpA = t));
        await a.StartAsync();
        await Await.UntilAsync(() => host.Hub.IsConnected(keyA.PublicKey) && host.Hub.IsConnected(keyB.PublicKey), Limit, "both nodes on the relay");
        Assert.Equal(PeerPath.Relay, a.GetPeerPath(keyB.PublicKey));
        Assert.Equal(PeerPath.Relay, b.GetPeerPath(keyA.PublicKey));

        var listener = await b.ListenAsync(7000);
        const long Size = 3L << 20;

        // 1. UDP blocked: the transfer goes through the relay.
        await TransferAsync(a, listener, Size, seed: 1);
        Assert.Equal(PeerPath.Relay, a.GetPeerPath(keyB.PublicKey));
        Assert.Equal(PeerPath.Relay, b.GetPeerPath(keyA.PublicKey));
        Assert.True(a.Relay!.Statistics.BytesSent > Size, $"A sent {a.Relay.Statistics.BytesSent} bytes through the relay");
        Assert.True(udpA!.SendStatistics.Blocked > 0, "A tried the direct path (handshake copies, pings) while it was blocked");
        Assert.True(host.Hub.Statistics.BytesForwarded > Size);

        // 2. Unblocked: both sides move to direct, and the relay carries nothing more.
        blocked.Value = false;
        await Await.UntilAsync(
            () => a.GetPeerPath(keyB.PublicKey) == PeerPath.Direct && b.GetPeerPath(keyA.PublicKey) == PeerPath.Direct,
            Limit,
            () => $"both on direct (A: {a.GetPeerPath(keyB.PublicKey)}, B: {b.GetPeerPath(keyA.PublicKey)})");
        var relayA = a.Relay.Statistics;
        var relayB = b.Relay!.Statistics;
        long udpSentBefore = udpA.SendStatistics.Forwarded;
        await TransferAsync(a, listener, Size, seed: 2);
        Assert.Equal(relayA.BytesSent, a.Relay.Statistics.BytesSent);
        Assert.Equal(relayB.BytesSent, b.Relay.Statistics.BytesSent);
        Assert.True(udpA.SendStatistics.Forwarded - udpSentBefore > Size / 1500, "the data went over UDP");
        Assert.Equal(PeerPath.Direct, a.GetPeerPath(keyB.PublicKey));

        // 3. Blocked again in the middle of a transfer: both fall back to the relay and the transfer completes.
        var client = await a.DialAsync(IpB, 7000).WaitAsync(Limit);
        var server = await listener.AcceptAsync().AsTask().WaitAsync(Limit);
        const long BigSize = 16L << 20;
        var firstMiB = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var receiving = ReceivePausedAsync(server, BigSize, 1 << 20, firstMiB, resume.Task);
        var sending = TcpTransfer.SendAsync(client, BigSize, seed: 3);
        await firstMiB.Task.WaitAsync(Limit); // the receiver holds back: the rest is still to come
        Assert.False(sending.IsCompleted, "the sender still has data to send when the path breaks");
        long relayBytesBefore = a.Relay.Statistics.BytesSent;
        blocked.Value = true;
        resume.SetResult();
        await Await.UntilAsync(
            () => a.GetPeerPath(keyB.PublicKey) == PeerPath.Relay && b.GetPeerPath(keyA.PublicKey) == PeerPath.Relay,
            Limit,
            () => $"both back on the relay (A: {a.GetPeerPath(keyB.PublicKey)}, B: {b.GetPeerPath(keyA.PublicKey)})");
        var sent = await sending.WaitAsync(TimeSpan.FromSeconds(120));
        var received = await receiving.WaitAsync(TimeSpan.FromSeconds(120));
        TcpTransfer.AssertSame(sent, received, "the transfer across the fallback");
        Assert.True(a.Relay.Statistics.BytesSent - relayBytesBefore > (1L << 20), "the rest went through the relay");
        await client.DisposeAsync();
        await server.DisposeAsync();
        await listener.DisposeAsync();
    }

    // Reads and hashes like TcpTransfer.ReceiveAsync, but stops after `pauseAfter` bytes until `resume`.
    private static async Task<TcpTransfer.Outcome> ReceivePausedAsync(Stream stream, long size, int pauseAfter, TaskCompletionSource paused, Task resume)
    {
        var buffer = new byte[64 * 1024];
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        long total = 0;
        while (total < size)
        {
            long want = total < pauseAfter ? pauseAfter - total : size - total;
            int n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, want)));
            if (n == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, n);
            total += n;
            if (total == pauseAfter)
            {
                paused.SetResult();
                await resume;
            }
        }

        return new TcpTransfer.Outcome(total, hash.GetHashAndReset(), TimeSpan.Zero);
    }

    private static async Task TransferAsync(MeshNode a, MeshTcpListener listener, long size, int seed)
    {
        var client = await a.DialAsync(IpB, 7000).WaitAsync(Limit);
        var server = await listener.AcceptAsync().AsTask().WaitAsync(Limit);
        var receiving = TcpTransfer.ReceiveAsync(server, size);
        var sent = await TcpTransfer.SendAsync(client, size, seed).WaitAsync(TimeSpan.FromSeconds(120));
        var received = await receiving.WaitAsync(TimeSpan.FromSeconds(120));
        TcpTransfer.AssertSame(sent, received, $"transfer {seed}");
        await client.DisposeAsync();
        await server.DisposeAsync();
    }

    private static Func<MeshNodeOptions, PacketBufferPool, DropCounters, IDatagramTransport> Blocking(StrongBox<bool> blocked, Action<FaultInjectingTransport> created) =>
        (options, pool, drops) =>
        {
            var udp = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, Pool = pool, Drops = drops });
            var faults = new FaultInjectingTransport(udp, seed: 1, pool) { Block = _ => blocked.Value };
            created(faults);
            return faults;
        };

    private static MeshNodeOptions Options(NodePrivateKey key, IPAddress address, NodePublicKey peer, IPAddress peerIp, IPEndPoint? endpoint, RelayTestHost host)
    {
        var options = new MeshNodeOptions
        {
            PrivateKey = key,
            ListenAddress = IPAddress.Loopback,
            RelayUrl = host.Url,
            RelayToken = host.IssueToken(key.PublicKey),
            PathTiming = FastPaths,
        };
        options.Addresses.Add(address);
        var p = new MeshPeerOptions { PublicKey = peer, Endpoint = endpoint };
        p.AllowedIPs.Add(new IPNetwork(peerIp, 32));
        options.Peers.Add(p);
        return options;
    }
}
