using System.Collections.Concurrent;
using System.Net;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Server.Tests.EndToEnd;

/// <summary>Two nodes in control mode whose direct UDP is blocked talk through the real coordinator's relay, then move to direct.</summary>
public sealed class BlockedUdpTests
{
    private const long Size = 4L << 20;
    private static readonly PathTiming FastPaths = new(TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(1500));

    [Fact]
    public async Task Blocked_direct_UDP_goes_through_the_coordinators_relay_and_unblocked_moves_to_direct()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        string key = await mesh.CreateReusableKeyAsync();

        // Each node's UDP socket is wrapped in a decorator that drops datagrams to and from the other node's port while blocked.
        var blocked = new StrongBox(true);
        var nodePorts = new ConcurrentDictionary<int, bool>();
        var faults = new ConcurrentDictionary<string, FaultInjectingTransport>();
        MeshNode a = await mesh.StartNodeAsync(mesh.NodeOptions("left", key, paths: FastPaths), Blocking("left", blocked, nodePorts, faults));
        MeshNode b = await mesh.StartNodeAsync(mesh.NodeOptions("right", key, paths: FastPaths), Blocking("right", blocked, nodePorts, faults));
        await KestrelMesh.PeerAsync(a, "right");
        await KestrelMesh.PeerAsync(b, "left");
        await using MeshTcpListener listener = await b.ListenAsync(7400);

        // 1. Blocked: the transfer goes through the relay, and the status says so on both sides.
        await KestrelMesh.TransferAsync(a, "right", listener, Size, seed: 41);
        Assert.Equal(MeshPeerPath.Relay, a.GetStatus().FindPeer("right")!.Path);
        Assert.Equal(MeshPeerPath.Relay, b.GetStatus().FindPeer("left")!.Path);
        Assert.True(a.Relay!.Statistics.BytesSent > Size, $"left sent {a.Relay.Statistics.BytesSent} bytes through the relay");
        Assert.True(faults["left"].SendStatistics.Blocked > 0, "left tried the direct path (its handshake initiation's direct copy) while it was blocked");

        // 2. Unblocked: both move to direct, and the next transfer leaves the relay alone.
        blocked.Value = false;
        await KestrelMesh.UntilAsync(
            () => a.GetStatus().FindPeer("right")!.Path == MeshPeerPath.Direct && b.GetStatus().FindPeer("left")!.Path == MeshPeerPath.Direct,
            () => $"both on the direct path (left sees {KestrelMesh.Names(a)}, right sees {KestrelMesh.Names(b)})");
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, b.ListenPort), a.GetStatus().FindPeer("right")!.Endpoint);
        long relayA = a.Relay.Statistics.BytesSent;
        long udpA = faults["left"].SendStatistics.Forwarded;
        await KestrelMesh.TransferAsync(a, "right", listener, Size, seed: 42);
        Assert.Equal(relayA, a.Relay.Statistics.BytesSent);
        Assert.True(faults["left"].SendStatistics.Forwarded - udpA > Size / 1500, "the data went over UDP");
        Assert.Equal(MeshPeerPath.Direct, a.GetStatus().FindPeer("right")!.Path);
    }

    private static Func<MeshNodeOptions, PacketBufferPool, DropCounters, IDatagramTransport> Blocking(
        string name, StrongBox blocked, ConcurrentDictionary<int, bool> nodePorts, ConcurrentDictionary<string, FaultInjectingTransport> created) =>
        (options, pool, drops) =>
        {
            var udp = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, Pool = pool, Drops = drops });
            int own = udp.LocalPort;
            nodePorts[own] = true;
            var faults = new FaultInjectingTransport(udp, seed: 1, pool) { Block = e => blocked.Value && e.Port != own && nodePorts.ContainsKey(e.Port) };
            created[name] = faults;
            return faults;
        };

    private sealed class StrongBox(bool value)
    {
        private volatile bool _value = value;

        public bool Value
        {
            get => _value;
            set => _value = value;
        }
    }
}
