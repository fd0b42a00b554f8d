namespace TunnelMesh.Net.Server.Tests.EndToEnd;

/// <summary>A node restarts from its state directory against the real coordinator: same identity, and its peers reconnect.</summary>
public sealed class NodeRestartTests
{
    [Fact]
    public async Task A_restarted_node_keeps_key_address_and_name_and_its_peers_reconnect_both_ways()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        string key = await mesh.CreateReusableKeyAsync();
        string stateA = mesh.StateDirectory("restarter");
        MeshNode a = await mesh.StartNodeAsync("restarter", key, stateA);
        MeshNode b = await mesh.StartNodeAsync("steady", key, mesh.StateDirectory("steady"));
        await using MeshTcpListener onB = await b.ListenAsync(7300);
        await KestrelMesh.PeerAsync(a, "steady");
        await KestrelMesh.EchoAsync(a, "steady", onB);
        MeshNodeStatus before = a.GetStatus();
        await KestrelMesh.UntilAsync(() => b.GetStatus().FindPeer("restarter")?.LastHandshake is not null, "steady has a session with restarter");

        DateTimeOffset restarted = DateTimeOffset.UtcNow;
        await a.DisposeAsync();
        await KestrelMesh.UntilAsync(() => b.GetStatus().FindPeer("restarter") is { Online: false }, "steady sees restarter offline");

        // A new MeshNode on the same state directory, without an auth key: the saved token is the credential.
        MeshNode again = await mesh.StartNodeAsync(mesh.NodeOptions("restarter", authKey: null, stateA));
        MeshNodeStatus after = again.GetStatus();
        Assert.Equal(before.Self.PublicKey, again.PublicKey);
        Assert.Equal(before.Self.Addresses, after.Self.Addresses);
        Assert.Equal("restarter", after.Self.Name);
        Assert.Equal("restarter.tunnelmesh", after.Self.Fqdn);
        Assert.NotEqual(0, again.ListenPort);
        Assert.Single(await mesh.ListNodesAsync(), n => n.Name == "restarter");

        // The peer reaches the restarted node by name, and back. The peer still holds the old session, which the
        // restarted node cannot open; its messages arrive through the relay, so the restarted node knows who sent
        // them and renews the session with a handshake of its own (instead of the peer's 15 s new-handshake timer).
        await KestrelMesh.UntilAsync(() => b.GetStatus().FindPeer("restarter") is { Online: true }, "steady sees restarter online again");
        await using MeshTcpListener onA = await again.ListenAsync(7301);
        await KestrelMesh.EchoAsync(b, "restarter", onA);
        Assert.True(again.Device.FindPeer(b.PublicKey)!.LastSentHandshake != long.MinValue, "the restarted node initiated the new session");
        await KestrelMesh.EchoAsync(again, "steady.tunnelmesh", onB);
        Assert.True(b.GetStatus().FindPeer("restarter")!.LastHandshake > restarted, "steady made a new session with the restarted node");

        // The peer's direct path follows the restarted node's new UDP port (from the map).
        await KestrelMesh.UntilAsync(
            () => b.GetStatus().FindPeer("restarter") is { Path: MeshPeerPath.Direct } p && p.Endpoint?.Port == again.ListenPort,
            () => $"steady goes direct to restarter's new port {again.ListenPort} (status: {b.GetStatus().FindPeer("restarter")})");
        Assert.Equal(again.Address, b.GetStatus().FindPeer("restarter")!.Addresses[0]);
    }
}
