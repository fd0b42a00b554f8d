using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using TunnelMesh.Net.Server.Stun;
using TunnelMesh.Net.Wire.Stun;

namespace TunnelMesh.Net.Server.Tests.Stun;

/// <summary>A MeshNode learns its WireGuard socket's endpoint from the coordinator's STUN responder, on the socket WireGuard uses.</summary>
public sealed class NodeStunTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);
    private static readonly IPAddress IpA = IPAddress.Parse("100.64.0.1");
    private static readonly IPAddress IpB = IPAddress.Parse("100.64.0.2");

    private static MeshNodeOptions Options(NodePrivateKey key, IPAddress address, NodePublicKey peer, IPAddress peerIp, IPEndPoint? endpoint)
    {
        var options = new MeshNodeOptions { PrivateKey = key, ListenAddress = IPAddress.Loopback, EnableDns = false };
        options.Addresses.Add(address);
        var p = new MeshPeerOptions { PublicKey = peer, Endpoint = endpoint };
        p.AllowedIPs.Add(new IPNetwork(peerIp, 32));
        options.Peers.Add(p);
        return options;
    }

    private static async Task<IHost> StartStunAsync()
    {
        var host = Host.CreateDefaultBuilder().ConfigureServices(s => s.AddMeshStun(o =>
        {
            o.Port = 0;
            o.BindAddress = IPAddress.Loopback;
        })).Build();
        await host.StartAsync();
        return host;
    }

    [Fact]
    public async Task The_node_learns_its_wireguard_sockets_endpoint_and_wireguard_traffic_on_that_socket_is_unaffected()
    {
        using var stun = await StartStunAsync();
        var responder = stun.Services.GetRequiredService<StunResponder>();
        var keyA = NodePrivateKey.Generate();
        var keyB = NodePrivateKey.Generate();
        await using var b = new MeshNode(Options(keyB, IpB, keyA.PublicKey, IpA, null));
        await b.StartAsync();
        await using var a = new MeshNode(Options(keyA, IpA, keyB.PublicKey, IpB, new IPEndPoint(IPAddress.Loopback, b.ListenPort)));
        await a.StartAsync();
        Assert.Null(a.ReflexiveEndpoint);

        var learned = await a.DiscoverReflexiveEndpointAsync(responder.LocalEndPoint).WaitAsync(Limit);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, a.ListenPort), learned);
        Assert.Equal(learned, a.ReflexiveEndpoint);

        // WireGuard on the same socket, with STUN queries in between: pings and UDP both ways.
        await using var socketA = a.ListenUdp(5000);
        await using var socketB = b.ListenUdp(5001);
        var buffer = new byte[2048];
        for (int i = 0; i < 5; i++)
        {
            await a.PingAsync(IpB, Limit);
            await b.PingAsync(IpA, Limit);
            var payload = new byte[100 + i];
            Random.Shared.NextBytes(payload);
            await socketA.SendToAsync(payload, new IPEndPoint(IpB, 5001));
            var r = await socketB.ReceiveFromAsync(buffer).AsTask().WaitAsync(Limit);
            Assert.Equal(payload, buffer[..r.ReceivedBytes]);
            Assert.Equal(learned, await a.DiscoverReflexiveEndpointAsync(responder.LocalEndPoint).WaitAsync(Limit));
            Assert.Equal(new IPEndPoint(IPAddress.Loopback, b.ListenPort), await b.DiscoverReflexiveEndpointAsync(responder.LocalEndPoint).WaitAsync(Limit));
        }

        Assert.Equal(11, responder.Answered);
        foreach (var node in new[] { a, b })
        {
            var drops = node.GetStatistics().Drops;
            Assert.False(drops.ContainsKey(DropReason.UnknownMessageType), "a STUN answer was taken for a bad WireGuard message");
            Assert.False(drops.ContainsKey(DropReason.StunUnmatched));
            Assert.False(drops.ContainsKey(DropReason.MalformedMessage));
        }

        Assert.True(a.GetStatistics().Peers.Single().Handshakes >= 1);
    }

    [Fact]
    public async Task Unasked_stun_answers_are_counted_and_a_silent_server_times_out()
    {
        var keyA = NodePrivateKey.Generate();
        await using var a = new MeshNode(Options(keyA, IpA, NodePrivateKey.Generate().PublicKey, IpB, null));
        await a.StartAsync();
        using var stranger = new System.Net.Sockets.UdpClient(new IPEndPoint(IPAddress.Loopback, 0));

        // A binding success nobody asked for, sent to the WireGuard port.
        var unasked = new byte[64];
        int n = StunMessage.WriteBindingSuccess(unasked, StunTransactionId.NewRandom(), new IPEndPoint(IPAddress.Parse("203.0.113.5"), 4444));
        await stranger.SendAsync(unasked.AsMemory(0, n), new IPEndPoint(IPAddress.Loopback, a.ListenPort));
        var deadline = DateTime.UtcNow + Limit;
        while (!a.GetStatistics().Drops.ContainsKey(DropReason.StunUnmatched))
        {
            Assert.True(DateTime.UtcNow < deadline, "the unasked STUN answer was not counted");
            await Task.Delay(10);
        }

        Assert.Null(a.ReflexiveEndpoint);
        Assert.False(a.GetStatistics().Drops.ContainsKey(DropReason.UnknownMessageType));

        // The stranger never answers: three attempts, then a timeout (short per-attempt wait).
        await Assert.ThrowsAsync<TimeoutException>(() => a.Stun.QueryAsync((IPEndPoint)stranger.Client.LocalEndPoint!, TimeSpan.FromMilliseconds(100), 3).WaitAsync(Limit));
        var ids = new HashSet<StunTransactionId>();
        for (int i = 0; i < 3; i++)
        {
            var r = await stranger.ReceiveAsync().WaitAsync(Limit);
            Assert.True(StunMessage.TryParse(r.Buffer, out var m));
            Assert.Equal(StunSpec.BindingRequest, m.Type);
            Assert.Equal(a.ListenPort, r.RemoteEndPoint.Port); // sent from the WireGuard socket
            ids.Add(m.TransactionId);
        }

        Assert.Single(ids); // retransmissions of one transaction
    }
}
