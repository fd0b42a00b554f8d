using System.Net;
using System.Net.Sockets;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Server.Tests.EndToEnd;

/// <summary>
/// A peer publishes several endpoints (interface addresses, STUN reflexive addresses); every one of them is
/// probed, not only the first. Before, a node pinged only its peer's first published endpoint, so two nodes
/// whose first endpoints did not answer (a LAN address seen from another network) stayed on the relay for good.
/// </summary>
public sealed class CandidateProbingTests
{
    private static readonly PathTiming FastPaths = new(TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(1500));

    [Fact]
    public async Task Nodes_whose_first_published_endpoints_never_answer_find_the_ones_that_do_and_go_direct()
    {
        // A UDP socket that is bound but never read: datagrams to it vanish, with no ICMP error either.
        using var blackHole = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        blackHole.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        string dead = blackHole.LocalEndPoint!.ToString()!;

        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        string key = await mesh.CreateReusableKeyAsync();
        MeshNodeOptions Options(string name)
        {
            var o = mesh.NodeOptions(name, key, paths: FastPaths);
            o.LocalEndpointsForTests = port => [dead, new IPEndPoint(IPAddress.Loopback, port).ToString()];
            return o;
        }

        MeshNode a = await mesh.StartNodeAsync(Options("cand-a"));
        MeshNode b = await mesh.StartNodeAsync(Options("cand-b"));
        await KestrelMesh.UntilAsync(() => a.GetStatus().FindPeer("cand-b") is not null && b.GetStatus().FindPeer("cand-a") is not null, "both see each other");

        // Traffic first goes through the relay; the probes of every candidate then find the live one.
        await using (MeshTcpListener listener = await b.ListenAsync(7600))
        {
            await KestrelMesh.EchoAsync(a, "cand-b", listener);
        }

        await KestrelMesh.UntilAsync(() => a.GetStatus().FindPeer("cand-b")!.Path == MeshPeerPath.Direct, () => $"cand-a goes direct to cand-b ({KestrelMesh.Names(a)})");
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, b.ListenPort), a.GetStatus().FindPeer("cand-b")!.Endpoint);
        await KestrelMesh.UntilAsync(() => b.GetStatus().FindPeer("cand-a")!.Path == MeshPeerPath.Direct, () => $"cand-b goes direct to cand-a ({KestrelMesh.Names(b)})");
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, a.ListenPort), b.GetStatus().FindPeer("cand-a")!.Endpoint);
    }
}
