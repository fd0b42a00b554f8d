using System.Net;
using TunnelMesh.Net.Server.Relay;
using TunnelMesh.Net.Server.Tests.EndToEnd;
using TunnelMesh.Net.Server.Tests.Stores;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Server.Tests.Relay;

/// <summary>
/// Two coordinator replicas on one PostgreSQL database; node A joins through replica 1 and node B
/// through replica 2, so each holds its relay connection on its own replica. Direct UDP between them
/// never works, so every packet between A and B crosses the replica link.
/// </summary>
public sealed class ReplicaRelayEndToEndTests
{
    private const long Size = 8L << 20;

    [PostgresFact]
    public async Task A_node_on_one_replica_reaches_a_node_on_another_through_the_relays()
    {
        await using ReplicaCluster cluster = await ReplicaCluster.StartAsync(2);
        ReplicaCluster.Replica one = cluster.Replicas[0], two = cluster.Replicas[1];
        string key = await one.CreateReusableKeyAsync();
        await cluster.LinkedAsync();

        DirectoryInfo root = Directory.CreateTempSubdirectory("tm-replicas-");
        var nodes = new List<MeshNode>();
        try
        {
            MeshNode a = await StartNodeAsync(nodes, one, key, "a", root);
            MeshNode b = await StartNodeAsync(nodes, two, key, "b", root);
            await KestrelMesh.PeerAsync(a, "b");
            await KestrelMesh.PeerAsync(b, "a");
            await Await.UntilAsync(() => one.Hub.IsConnected(a.PublicKey) && two.Hub.IsConnected(b.PublicKey), TimeSpan.FromSeconds(60), "each node on its own replica's relay");
            Assert.False(one.Hub.IsConnected(b.PublicKey));
            Assert.False(two.Hub.IsConnected(a.PublicKey));

            await using MeshTcpListener listener = await b.ListenAsync(7500);
            await KestrelMesh.TransferAsync(a, "b", listener, Size, seed: 71);

            Assert.Equal(MeshPeerPath.Relay, a.GetStatus().FindPeer("b")!.Path);
            Assert.Equal(MeshPeerPath.Relay, b.GetStatus().FindPeer("a")!.Path);
            ReplicaRelayStatistics s1 = one.Metrics.Statistics, s2 = two.Metrics.Statistics;
            Assert.True(s1.ForwardedBytes > Size, $"replica 1 forwarded {s1.ForwardedBytes} bytes to replica 2 (data from a)");
            Assert.True(s2.Forwarded > 0, $"replica 2 forwarded {s2.Forwarded} frames to replica 1 (b's ACKs)");
            Assert.True(s2.Received > Size / 65535, $"replica 2 handed a's frames to b: {s1} / {s2}");
            Assert.True(s1.Received > 0, $"replica 1 handed b's frames to a: {s1} / {s2}");

            // What arrives over a link is at most what the other side queued onto it.
            Assert.True(s2.Received + s2.DroppedUnknownDestination + s2.DroppedDestinationQueueFull <= s1.Forwarded, $"{s1} / {s2}");
        }
        finally
        {
            for (int i = nodes.Count - 1; i >= 0; i--)
            {
                await nodes[i].DisposeAsync();
            }

            root.Delete(recursive: true);
        }
    }

    [PostgresFact]
    public async Task When_a_load_balancer_moves_a_node_to_another_replica_its_frames_follow()
    {
        await using ReplicaCluster cluster = await ReplicaCluster.StartAsync(2);
        ReplicaCluster.Replica one = cluster.Replicas[0], two = cluster.Replicas[1];
        string key = await one.CreateReusableKeyAsync();
        await cluster.LinkedAsync();

        // b reaches the coordinator (map stream and relay) through a balancer that sends it to replica 2 first.
        await using var balancer = new SwitchingTcpProxy(two.Url);
        DirectoryInfo root = Directory.CreateTempSubdirectory("tm-replicas-");
        var nodes = new List<MeshNode>();
        try
        {
            MeshNode a = await StartNodeAsync(nodes, one.Url, key, "a", root);
            MeshNode b = await StartNodeAsync(nodes, balancer.Url, key, "b", root);
            MeshNode c = await StartNodeAsync(nodes, two.Url, key, "c", root);
            await KestrelMesh.PeerAsync(a, "b");
            await KestrelMesh.PeerAsync(c, "b");
            await KestrelMesh.PeerAsync(b, "a");
            await KestrelMesh.PeerAsync(b, "c");
            await using MeshTcpListener listener = await b.ListenAsync(7500);
            await Await.UntilAsync(() => two.Hub.IsConnected(b.PublicKey), TimeSpan.FromSeconds(60), "b on replica 2");

            // a (replica 1) to b (replica 2): across the link.
            await KestrelMesh.TransferAsync(a, "b", listener, 1 << 20, seed: 81);
            Assert.True(one.Metrics.Statistics.ForwardedBytes > 1 << 20);

            // The balancer moves b to replica 1 (its connections are cut; it reconnects there).
            balancer.Switch(one.Url);
            await Await.UntilAsync(() => one.Hub.IsConnected(b.PublicKey) && !two.Hub.IsConnected(b.PublicKey), TimeSpan.FromSeconds(60), "b on replica 1");

            // a to b is now local to replica 1: the data does not cross its link (what little does is
            // the nodes' own traffic to c, such as handshakes or keepalives).
            long before = one.Metrics.Statistics.ForwardedBytes;
            await KestrelMesh.TransferAsync(a, "b", listener, 1 << 20, seed: 82);
            Assert.True(one.Metrics.Statistics.ForwardedBytes - before < 64 << 10, $"replica 1 sent {one.Metrics.Statistics.ForwardedBytes - before} bytes to replica 2 during a local transfer");

            // c (replica 2) to b follows b to replica 1.
            long fromTwo = two.Metrics.Statistics.ForwardedBytes;
            await KestrelMesh.TransferAsync(c, "b", listener, 1 << 20, seed: 83);
            Assert.True(two.Metrics.Statistics.ForwardedBytes - fromTwo > 1 << 20, "c's data crossed from replica 2 to replica 1");
            Assert.Equal(MeshPeerPath.Relay, c.GetStatus().FindPeer("b")!.Path);
        }
        finally
        {
            for (int i = nodes.Count - 1; i >= 0; i--)
            {
                await nodes[i].DisposeAsync();
            }

            root.Delete(recursive: true);
        }
    }

    // Each node's control URL is its own replica, so its relay is that replica's (<control>/api/v1/relay).
    // Its UDP socket is wrapped in a decorator that drops every datagram (a test-only transport hook, as in
    // BlockedUdpTests): the direct path can never work, so all traffic between the nodes takes the relay.
    private static Task<MeshNode> StartNodeAsync(List<MeshNode> nodes, ReplicaCluster.Replica replica, string key, string name, DirectoryInfo root) =>
        StartNodeAsync(nodes, replica.Url, key, name, root);

    private static async Task<MeshNode> StartNodeAsync(List<MeshNode> nodes, Uri controlUrl, string key, string name, DirectoryInfo root)
    {
        var options = new MeshNodeOptions
        {
            ControlUrl = controlUrl,
            AuthKey = key,
            Hostname = name,
            StateDirectory = Path.Combine(root.FullName, name),
        };
        var node = new MeshNode(options, null, null, (_, pool, drops) =>
            new FaultInjectingTransport(new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, Pool = pool, Drops = drops }), seed: 1, pool) { Block = _ => true });
        nodes.Add(node);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await node.StartAsync(cts.Token);
        return node;
    }
}
