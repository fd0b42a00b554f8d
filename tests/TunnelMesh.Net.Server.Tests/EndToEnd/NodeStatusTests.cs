using System.Net;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Server.Tests.EndToEnd;

/// <summary>A node's status against the real coordinator: its peers with name, addresses, path and last handshake; an event when a node joins.</summary>
public sealed class NodeStatusTests
{
    private static readonly PathTiming FastPaths = new(TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(1500));

    [Fact]
    public async Task Status_lists_peers_with_name_addresses_path_and_last_handshake_and_StatusChanged_fires_when_a_third_node_joins()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        string key = await mesh.CreateReusableKeyAsync();
        MeshNode a = await mesh.StartNodeAsync(mesh.NodeOptions("status-a", key, paths: FastPaths));
        MeshNode b = await mesh.StartNodeAsync(mesh.NodeOptions("status-b", key, paths: FastPaths));
        await KestrelMesh.UntilAsync(() => a.GetStatus().ControlConnected && a.GetStatus().FindPeer("status-b") is not null, "status-a is connected and sees status-b");

        List<MeshNodeInfo> listed = await mesh.ListNodesAsync();
        MeshNodeInfo infoA = listed.Single(n => n.Name == "status-a");
        MeshNodeInfo infoB = listed.Single(n => n.Name == "status-b");
        MeshNodeStatus status = a.GetStatus();
        Assert.Equal("status-a", status.Self.Name);
        Assert.Equal("status-a.tunnelmesh", status.Self.Fqdn);
        Assert.Equal(infoA.Addresses, status.Self.Addresses.Select(x => x.ToString()));
        Assert.Equal(a.PublicKey, status.Self.PublicKey);
        Assert.True(status.MapVersion > 0);

        // Before any traffic: the peer is on the relay (every peer starts there) with no handshake yet.
        MeshPeerStatus peer = Assert.Single(status.Peers);
        Assert.Equal("status-b", peer.Name);
        Assert.Equal("status-b.tunnelmesh", peer.Fqdn);
        Assert.Equal(infoB.Addresses, peer.Addresses.Select(x => x.ToString()));
        Assert.Equal(b.Address, peer.Addresses[0]);
        Assert.Equal(System.Net.Sockets.AddressFamily.InterNetworkV6, peer.Addresses[1].AddressFamily);
        Assert.Equal(b.PublicKey, peer.PublicKey);
        Assert.Equal(MeshPeerPath.Relay, peer.Path);
        Assert.Null(peer.LastHandshake);
        Assert.Same(peer, status.FindPeer(b.PublicKey));

        // After traffic: a handshake time, then the direct path to b's UDP endpoint.
        DateTimeOffset before = DateTimeOffset.UtcNow;
        await using (MeshTcpListener listener = await b.ListenAsync(7500))
        {
            await KestrelMesh.EchoAsync(a, "status-b", listener);
        }

        DateTimeOffset? handshake = a.GetStatus().FindPeer("status-b")!.LastHandshake;
        Assert.NotNull(handshake);
        Assert.InRange(handshake.Value, before.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        await KestrelMesh.UntilAsync(() => a.GetStatus().FindPeer("status-b")!.Path == MeshPeerPath.Direct, () => $"status-a goes direct to status-b ({KestrelMesh.Names(a)})");
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, b.ListenPort), a.GetStatus().FindPeer("status-b")!.Endpoint);
        Assert.True(a.GetStatus().FindPeer("status-b")!.Online);

        // A third node joins: status-a raises StatusChanged with it in the status.
        var seen = new TaskCompletionSource<MeshNodeStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
        int events = 0;
        object? raisedBy = null;
        a.StatusChanged += (sender, e) =>
        {
            Interlocked.Increment(ref events);
            Volatile.Write(ref raisedBy, sender);
            if (e.Status.FindPeer("status-c") is not null)
            {
                seen.TrySetResult(e.Status);
            }
        };
        MeshNode c = await mesh.StartNodeAsync(mesh.NodeOptions("status-c", key, paths: FastPaths));
        MeshNodeStatus changed = await seen.Task.WaitAsync(KestrelMesh.Deadline);
        Assert.True(Volatile.Read(ref events) >= 1);
        Assert.Same(a, Volatile.Read(ref raisedBy));
        Assert.Equal(["status-b", "status-c"], changed.Peers.Select(p => p.Name));
        MeshPeerStatus third = changed.FindPeer("status-c.tunnelmesh")!;
        Assert.Equal(c.GetStatus().Self.Addresses, third.Addresses);
        Assert.Equal(c.PublicKey, third.PublicKey);
        Assert.Equal(MeshPeerPath.Relay, third.Path);
        Assert.Null(third.LastHandshake);
        Assert.True(changed.MapVersion > status.MapVersion);
    }
}
