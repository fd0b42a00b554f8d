// QuickStart: two mesh nodes in one process, each with its own userspace IP stack, talking
// WireGuard to each other over loopback UDP. No TUN device, no root.
using System.Net;
using System.Text;
using TunnelMesh.Net;

var keyA = NodePrivateKey.Generate();
var keyB = NodePrivateKey.Generate();
var ipA = IPAddress.Parse("100.64.0.1");
var ipB = IPAddress.Parse("100.64.0.2");

// Node B first, so A can be told B's port. (With the coordinator, nodes will find each other.)
await using var nodeB = new MeshNode(NodeOptions(keyB, ipB, peer: keyA.PublicKey, peerIp: ipA, peerEndpoint: null));
await nodeB.StartAsync();
await using var nodeA = new MeshNode(NodeOptions(keyA, ipA, peer: keyB.PublicKey, peerIp: ipB, peerEndpoint: new IPEndPoint(IPAddress.Loopback, nodeB.ListenPort)));
await nodeA.StartAsync();
Console.WriteLine($"node A {nodeA.PublicKey} at {nodeA.Address}, UDP port {nodeA.ListenPort}");
Console.WriteLine($"node B {nodeB.PublicKey} at {nodeB.Address}, UDP port {nodeB.ListenPort}");

// Ping: the first one includes the WireGuard handshake.
for (int i = 0; i < 3; i++)
{
    var rtt = await nodeA.PingAsync(ipB, TimeSpan.FromSeconds(5));
    Console.WriteLine($"ping A -> B: {rtt.TotalMilliseconds:F3} ms");
}

Console.WriteLine($"ping B -> A: {(await nodeB.PingAsync(ipA, TimeSpan.FromSeconds(5))).TotalMilliseconds:F3} ms");

// UDP datagrams both ways, on the nodes' mesh addresses.
await using var socketA = nodeA.ListenUdp(5000);
await using var socketB = nodeB.ListenUdp(6000);
using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
var buffer = new byte[2048];

await socketA.SendToAsync(Encoding.UTF8.GetBytes("hello from A"), new IPEndPoint(ipB, 6000), timeout.Token);
var atB = await socketB.ReceiveFromAsync(buffer, timeout.Token);
Console.WriteLine($"B received \"{Encoding.UTF8.GetString(buffer, 0, atB.ReceivedBytes)}\" from {atB.RemoteEndPoint}");

await socketB.SendToAsync(Encoding.UTF8.GetBytes("hello back from B"), atB.RemoteEndPoint, timeout.Token);
var atA = await socketA.ReceiveFromAsync(buffer, timeout.Token);
Console.WriteLine($"A received \"{Encoding.UTF8.GetString(buffer, 0, atA.ReceivedBytes)}\" from {atA.RemoteEndPoint}");

foreach (var (name, node) in new[] { ("A", nodeA), ("B", nodeB) })
{
    var stats = node.GetStatistics();
    foreach (var peer in stats.Peers)
    {
        Console.WriteLine($"node {name}: peer {peer.PublicKey} endpoint {peer.Endpoint} sent {peer.SentBytes} B, received {peer.ReceivedBytes} B, handshakes {peer.Handshakes}, drops {stats.TotalDrops}");
    }
}

Console.WriteLine("QuickStart finished.");
return 0;

static MeshNodeOptions NodeOptions(NodePrivateKey key, IPAddress address, NodePublicKey peer, IPAddress peerIp, IPEndPoint? peerEndpoint)
{
    var options = new MeshNodeOptions { PrivateKey = key, ListenAddress = IPAddress.Loopback };
    options.Addresses.Add(address);
    var p = new MeshPeerOptions { PublicKey = peer, Endpoint = peerEndpoint };
    p.AllowedIPs.Add(new IPNetwork(peerIp, 32));
    options.Peers.Add(p);
    return options;
}
