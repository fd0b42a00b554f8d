// QuickStart: two mesh nodes in one process, each with its own userspace IP stack, talking
// WireGuard to each other over loopback UDP: ping, UDP datagrams and a TCP echo. No TUN device,
// no root.
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

// TCP on the mesh: B listens on port 80 of its mesh address, A dials it. Both ends are ordinary
// Streams (and IDuplexPipes) on the nodes' own userspace TCP, no sockets of the OS involved.
await using (var listener = await nodeB.ListenAsync(80, timeout.Token))
{
    var accepting = listener.AcceptAsync(timeout.Token).AsTask();
    await using var client = await nodeA.DialAsync(new IPEndPoint(ipB, 80), options: null, timeout.Token);
    await using var server = await accepting;
    Console.WriteLine($"TCP {client.LocalEndPoint} -> {client.RemoteEndPoint} established");

    var request = new byte[1 << 20];
    Random.Shared.NextBytes(request);
    var echo = Task.Run(async () =>
    {
        await server.CopyToAsync(server, timeout.Token); // echo until A half-closes
        await server.ShutdownSendAsync(timeout.Token);
    });
    var write = Task.Run(async () =>
    {
        await client.WriteAsync(request, timeout.Token);
        await client.ShutdownSendAsync(timeout.Token);
    });
    var back = new MemoryStream();
    await client.CopyToAsync(back, timeout.Token);
    await Task.WhenAll(echo, write);
    bool same = back.ToArray().AsSpan().SequenceEqual(request);
    Console.WriteLine($"TCP echo: sent {request.Length} B, got {back.Length} B back, {(same ? "identical" : "DIFFERENT")}");
    if (!same)
    {
        return 1;
    }
}

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
