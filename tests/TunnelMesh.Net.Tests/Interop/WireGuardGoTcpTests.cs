using System.Net;
using System.Net.Sockets;
using TunnelMesh.Net.Tests.Support;
using Xunit.Abstractions;

namespace TunnelMesh.Net.Tests.Interop;

/// <summary>
/// The whole path: the kernel's TCP in a namespace made by the test, wireguard-go's TUN there, its
/// UDP socket on loopback, our MeshNode (WireGuard over UDP, our stack, our TCP) on the other side.
/// Bulk data each way with hashes, in both directions of opening. Throughput is printed, never asserted.
/// </summary>
[Collection(nameof(InteropCollection))]
public sealed class WireGuardGoTcpTests(ITestOutputHelper output)
{
    private const long Size = 32L << 20;
    private static readonly IPAddress NodeIp = WireGuardGoInteropTests.NodeIp;
    private static readonly IPAddress KernelIp = WireGuardGoInteropTests.KernelIp;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan BulkLimit = TimeSpan.FromSeconds(50);

    [ExternalFact("wireguard-go", "wg", "ip", "unshare", "nsenter")]
    public async Task Kernel_client_through_wireguard_go_exchanges_32_MiB_each_way_with_a_node_listener()
    {
        await using var ns = await NetNamespace.CreateAsync();
        await using var wg = await WireGuardGo.CreateAsync();
        var key = NodePrivateKey.Generate();
        await using var node = await WireGuardGoInteropTests.StartNodeAsync(key, wg, wgPort: null);
        await wg.StartAsync(ns, $"{KernelIp}/24", "peer", key.PublicKey.ToString(), "endpoint", $"127.0.0.1:{node.ListenPort}", "allowed-ips", $"{NodeIp}/32");

        await using var listener = await node.ListenAsync(8080);
        using var client = ns.CreateSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync().AsTask();

        // wireguard-go initiates the handshake when the kernel's SYN reaches it.
        await client.ConnectAsync(new IPEndPoint(NodeIp, 8080)).Within(Limit, () => $"kernel connect through wireguard-go\n{Diagnose(node, wg)}");
        await using var server = await accept.Within(Limit, "accept");
        Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
        using var kernelStream = new NetworkStream(client, ownsSocket: false);

        // Download, then upload half-closed by the kernel, then our FIN.
        var down = TcpTransfer.SendAsync(server, Size, seed: 11);
        var downReceived = TcpTransfer.ReceiveAsync(kernelStream, exactly: Size);
        await Task.WhenAll(down, downReceived).Within(BulkLimit, () => $"32 MiB node to kernel\n{Diagnose(node, wg)}");
        TcpTransfer.AssertSame(await down, await downReceived, "node to kernel through wireguard-go");

        var up = TcpTransfer.SendAsync(kernelStream, Size, seed: 12, afterLastWrite: () => { client.Shutdown(SocketShutdown.Send); return Task.CompletedTask; });
        var upReceived = TcpTransfer.ReceiveAsync(server);
        await Task.WhenAll(up, upReceived).Within(BulkLimit, () => $"32 MiB kernel to node\n{Diagnose(node, wg)}");
        TcpTransfer.AssertSame(await up, await upReceived, "kernel to node through wireguard-go");

        await server.ShutdownSendAsync();
        Assert.Equal(0, await client.ReceiveAsync(new byte[1], SocketFlags.None).Within(Limit, "the kernel seeing our FIN"));
        AssertNoCryptoDrops(node);
        output.WriteLine($"kernel -> wireguard-go -> node listener: node to kernel {await downReceived}; kernel to node {await upReceived}; segment size {server.Connection.SegmentSize}");
    }

    [ExternalFact("wireguard-go", "wg", "ip", "unshare", "nsenter")]
    public async Task Node_dials_a_kernel_listener_behind_wireguard_go_and_data_crosses_both_ways_at_once()
    {
        await using var ns = await NetNamespace.CreateAsync();
        await using var wg = await WireGuardGo.CreateAsync();
        var key = NodePrivateKey.Generate();
        await wg.StartAsync(ns, $"{KernelIp}/24", "peer", key.PublicKey.ToString(), "allowed-ips", $"{NodeIp}/32");
        await using var node = await WireGuardGoInteropTests.StartNodeAsync(key, wg, wg.ListenPort);

        using var kernelListener = ns.CreateSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        kernelListener.Bind(new IPEndPoint(KernelIp, 0));
        kernelListener.Listen();
        int port = ((IPEndPoint)kernelListener.LocalEndPoint!).Port;
        var accept = kernelListener.AcceptAsync();

        // The node initiates the WireGuard handshake with the SYN.
        await using var client = await node.DialAsync(KernelIp, port).Within(Limit, () => $"dial through wireguard-go\n{Diagnose(node, wg)}");
        using var accepted = await accept.Within(Limit, "kernel accept");
        Assert.Equal(client.LocalEndPoint, accepted.RemoteEndPoint);
        using var kernelStream = new NetworkStream(accepted, ownsSocket: false);

        var up = TcpTransfer.SendAsync(client, Size, seed: 13, afterLastWrite: () => client.ShutdownSendAsync().AsTask());
        var down = TcpTransfer.SendAsync(kernelStream, Size, seed: 14, afterLastWrite: () => { accepted.Shutdown(SocketShutdown.Send); return Task.CompletedTask; });
        var upReceived = TcpTransfer.ReceiveAsync(kernelStream);
        var downReceived = TcpTransfer.ReceiveAsync(client);
        await Task.WhenAll(up, down, upReceived, downReceived).Within(BulkLimit, () => $"32 MiB each way at once\n{Diagnose(node, wg)}");
        TcpTransfer.AssertSame(await up, await upReceived, "node to kernel listener");
        TcpTransfer.AssertSame(await down, await downReceived, "kernel listener to node");

        // A refused port behind wireguard-go is refused, not unreachable.
        var refused = await Assert.ThrowsAsync<SocketException>(() => node.DialAsync(KernelIp, 9).Within(Limit, "refused dial"));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        AssertNoCryptoDrops(node);
        output.WriteLine($"node dials kernel behind wireguard-go, both at once: node to kernel {await upReceived}; kernel to node {await downReceived}");
    }

    private static void AssertNoCryptoDrops(MeshNode node)
    {
        var stats = node.GetStatistics();
        Assert.Equal(0, stats.DropsFor(DropReason.DecryptionFailed));
        Assert.Equal(0, stats.DropsFor(DropReason.SourceNotAllowed));
    }

    private static string Diagnose(MeshNode node, WireGuardGo wg)
    {
        var stats = node.GetStatistics();
        var peer = stats.Peers.Single();
        return $"node: port {node.ListenPort}, peer endpoint {peer.Endpoint}, handshakes {peer.Handshakes}, sent {peer.SentBytes}, received {peer.ReceivedBytes}, drops [{string.Join(", ", stats.Drops.Select(d => $"{d.Key}={d.Value}"))}]\nwireguard-go log (tail):\n{Tail(wg.Log, 30)}";
    }

    private static string Tail(string text, int lines)
    {
        var all = text.Split('\n');
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }
}
