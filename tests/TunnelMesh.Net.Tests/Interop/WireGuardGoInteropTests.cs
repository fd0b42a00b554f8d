using System.Net;
using System.Net.Sockets;
using System.Text;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Tests.Interop;

/// <summary>
/// A MeshNode and a real wireguard-go are each other's peer. wireguard-go's TUN sits in a network
/// namespace made by the test, so the Linux kernel's own ping and UDP sockets are the far end.
/// </summary>
[Collection(nameof(InteropCollection))]
public sealed class WireGuardGoInteropTests
{
    internal static readonly IPAddress NodeIp = IPAddress.Parse("100.64.0.1");
    internal static readonly IPAddress KernelIp = IPAddress.Parse("100.64.0.2");

    /// <summary>
    /// A node at <see cref="NodeIp"/> whose one peer is <paramref name="wg"/> (at <see cref="KernelIp"/>), reached at
    /// <paramref name="wgPort"/> on loopback when given. The node's UDP socket is on its default (ListenAddress [::],
    /// dual-stack), as a user gets it; wireguard-go reaches it over IPv4 loopback.
    /// </summary>
    internal static async Task<MeshNode> StartNodeAsync(NodePrivateKey key, WireGuardGo wg, int? wgPort)
    {
        var options = new MeshNodeOptions { PrivateKey = key };
        options.Addresses.Add(NodeIp);
        var peer = new MeshPeerOptions { PublicKey = NodePublicKey.Parse(wg.PublicKey) };
        peer.AllowedIPs.Add(new IPNetwork(KernelIp, 32));
        if (wgPort is { } p)
        {
            peer.Endpoint = new IPEndPoint(IPAddress.Loopback, p);
        }

        options.Peers.Add(peer);
        var node = new MeshNode(options);
        await node.StartAsync();
        return node;
    }

    private static async Task KernelPingsNodeAsync(NetNamespace ns, WireGuardGo wg, MeshNode node, int count = 3)
    {
        var ping = await ns.ExecAsync("ping", ["-c", count.ToString(), "-W", "3", "-i", "0.2", NodeIp.ToString()], TimeSpan.FromSeconds(30));
        Assert.True(ping.Stdout.Contains($"{count} received", StringComparison.Ordinal), $"kernel ping through wireguard-go failed:\n{ping.All}\n{await DiagnoseAsync(wg, node)}");
    }

    private static async Task NodePingsKernelAsync(WireGuardGo wg, MeshNode node)
    {
        try
        {
            await node.PingAsync(KernelIp, TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"the node's ping to the kernel timed out\n{await DiagnoseAsync(wg, node)}", ex);
        }
    }

    private static async Task<string> DiagnoseAsync(WireGuardGo wg, MeshNode node)
    {
        var stats = node.GetStatistics();
        var peer = stats.Peers.Single();
        return $"node: port {node.ListenPort}, peer endpoint {peer.Endpoint}, handshakes {peer.Handshakes}, sent {peer.SentBytes}, received {peer.ReceivedBytes}, drops [{string.Join(", ", stats.Drops.Select(d => $"{d.Key}={d.Value}"))}]\n"
            + $"wg show:\n{await wg.ShowAsync()}\nwireguard-go log:\n{wg.Log}";
    }

    [ExternalFact("wireguard-go", "wg", "ip", "unshare", "nsenter", "ping")]
    public async Task Wireguard_go_drops_path_messages_harmlessly_and_the_session_carries_on()
    {
        await using var ns = await NetNamespace.CreateAsync();
        await using var wg = await WireGuardGo.CreateAsync();
        var key = NodePrivateKey.Generate();
        await using var node = await StartNodeAsync(key, wg, wgPort: null);
        string[] peerArgs = ["peer", key.PublicKey.ToString(), "endpoint", $"127.0.0.1:{node.ListenPort}", "allowed-ips", $"{NodeIp}/32"];
        await wg.StartAsync(ns, $"{KernelIp}/24", peerArgs);
        await KernelPingsNodeAsync(ns, wg, node);

        // A ping, a pong and a call-me-maybe with 16 candidates, sealed in the session as a mesh peer would send them.
        var peer = node.Device.FindPeer(NodePublicKey.Parse(wg.PublicKey))!;
        long received = ReceivedByWireGuardGo(await wg.ShowAsync("transfer"));
        var message = new byte[TunnelMesh.Net.WireGuard.PathControl.MaxLength];
        var candidates = Enumerable.Range(1, 16)
            .Select(i => new TunnelMesh.Net.WireGuard.PathCandidate(TunnelMesh.Net.Transport.Endpoint.FromIPv4(0xC0000200 + (uint)i, 51820), TunnelMesh.Net.WireGuard.CandidateKind.Local))
            .ToList();
        int sent = 0;
        for (int i = 0; i < 10; i++)
        {
            sent += peer.SendPathMessage(message.AsSpan(0, TunnelMesh.Net.WireGuard.PathControl.WriteProbe(message, TunnelMesh.Net.WireGuard.PathControl.Ping, (ulong)i)), peer.Endpoint);
            sent += peer.SendPathMessage(message.AsSpan(0, TunnelMesh.Net.WireGuard.PathControl.WriteProbe(message, TunnelMesh.Net.WireGuard.PathControl.Pong, (ulong)i)), peer.Endpoint);
            sent += peer.SendPathMessage(message.AsSpan(0, TunnelMesh.Net.WireGuard.PathControl.WriteCallMeMaybe(message, candidates)), peer.Endpoint);
        }

        Assert.True(sent > 30 * 32, $"the node sealed the messages ({sent} bytes)");

        // wireguard-go authenticated them (its received counter grows by them) and dropped them (not IP); the session carries on.
        await KernelPingsNodeAsync(ns, wg, node);
        long after = ReceivedByWireGuardGo(await wg.ShowAsync("transfer"));
        Assert.True(after - received >= sent, $"wireguard-go received {after - received} bytes, the path messages were {sent}");
        await NodePingsKernelAsync(wg, node);
    }

    // `wg show transfer`: "<peer>\t<received>\t<sent>".
    private static long ReceivedByWireGuardGo(string transfer) => long.Parse(transfer.Trim().Split('\t')[1], System.Globalization.CultureInfo.InvariantCulture);

    [ExternalFact("wireguard-go", "wg", "ip", "unshare", "nsenter", "ping")]
    public async Task Wireguard_go_initiates_kernel_ping_gets_replies_and_session_survives_restart()
    {
        await using var ns = await NetNamespace.CreateAsync();
        await using var wg = await WireGuardGo.CreateAsync();
        var key = NodePrivateKey.Generate();
        await using var node = await StartNodeAsync(key, wg, wgPort: null);
        string[] peerArgs = ["peer", key.PublicKey.ToString(), "endpoint", $"127.0.0.1:{node.ListenPort}", "allowed-ips", $"{NodeIp}/32"];
        await wg.StartAsync(ns, $"{KernelIp}/24", peerArgs);

        // wireguard-go initiates (our node learned no endpoint yet); the kernel's ping gets replies.
        await KernelPingsNodeAsync(ns, wg, node);
        var stats = node.GetStatistics().Peers.Single();
        Assert.True(stats.Handshakes >= 1, "the node saw no completed handshake");
        Assert.NotNull(stats.Endpoint); // learned by roaming from the authenticated initiation

        // And back: the node pings the kernel through the same session.
        await NodePingsKernelAsync(wg, node);

        // wireguard-go restarts with no memory of the session: a new handshake brings it back.
        await wg.StopAsync();
        await wg.StartAsync(ns, $"{KernelIp}/24", peerArgs);
        await KernelPingsNodeAsync(ns, wg, node);
        await NodePingsKernelAsync(wg, node);
        Assert.True(node.GetStatistics().Peers.Single().Handshakes >= 2, "no second handshake after the restart");
    }

    /// <summary>
    /// A node on default options (one dual-stack UDP socket on [::]) is reached by a standard WireGuard peer over
    /// IPv4 and over IPv6: before the default bound an IPv6-only socket and every IPv4 initiation met a closed port.
    /// </summary>
    [ExternalFact("wireguard-go", "wg", "ip", "unshare", "nsenter", "ping")]
    public async Task A_node_on_default_options_answers_wireguard_go_over_IPv4_and_over_IPv6()
    {
        foreach (var underlay in new[] { IPAddress.Loopback, IPAddress.IPv6Loopback })
        {
            await using var ns = await NetNamespace.CreateAsync();
            await using var wg = await WireGuardGo.CreateAsync();
            var key = NodePrivateKey.Generate();
            await using var node = await StartNodeAsync(key, wg, wgPort: null);
            var nodeEndpoint = new IPEndPoint(underlay, node.ListenPort);
            await wg.StartAsync(ns, $"{KernelIp}/24", "peer", key.PublicKey.ToString(), "endpoint", nodeEndpoint.ToString(), "allowed-ips", $"{NodeIp}/32");

            await KernelPingsNodeAsync(ns, wg, node);
            var learned = Assert.IsType<IPEndPoint>(node.GetStatistics().Peers.Single().Endpoint);
            Assert.Equal(underlay, learned.Address.IsIPv4MappedToIPv6 ? learned.Address.MapToIPv4() : learned.Address);
            await NodePingsKernelAsync(wg, node);
        }
    }

    [ExternalFact("wireguard-go", "wg", "ip", "unshare", "nsenter", "ping")]
    public async Task Node_initiates_and_udp_datagrams_cross_both_ways_with_the_kernel()
    {
        await using var ns = await NetNamespace.CreateAsync();
        await using var wg = await WireGuardGo.CreateAsync();
        var key = NodePrivateKey.Generate();

        // wireguard-go first (so its port is known), then the node with that endpoint: the node initiates.
        await wg.StartAsync(ns, $"{KernelIp}/24", "peer", key.PublicKey.ToString(), "allowed-ips", $"{NodeIp}/32");
        await using var node = await StartNodeAsync(key, wg, wg.ListenPort);
        await NodePingsKernelAsync(wg, node);
        // wireguard-go accepted our initiation: it reports a handshake time for our key.
        var handshakes = (await wg.ShowAsync("latest-handshakes")).Split('\t', '\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(key.PublicKey.ToString(), handshakes[0]);
        Assert.NotEqual("0", handshakes[1]);

        // A kernel UDP socket inside the namespace, on the TUN's address.
        using var kernel = ns.CreateSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        kernel.Bind(new IPEndPoint(KernelIp, 0));
        var kernelEndPoint = (IPEndPoint)kernel.LocalEndPoint!;
        await using var socket = node.ListenUdp(7000);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        for (int i = 0; i < 20; i++)
        {
            // node -> kernel
            var payload = Encoding.ASCII.GetBytes($"to-kernel-{i}-" + new string('x', i * 50));
            await socket.SendToAsync(payload, kernelEndPoint, timeout.Token);
            var buffer = new byte[2048];
            var from = new IPEndPoint(IPAddress.Any, 0);
            var received = await kernel.ReceiveFromAsync(buffer, SocketFlags.None, from, timeout.Token);
            Assert.Equal(payload, buffer[..received.ReceivedBytes]);
            Assert.Equal(new IPEndPoint(NodeIp, 7000), received.RemoteEndPoint);

            // kernel -> node
            var reply = Encoding.ASCII.GetBytes($"to-node-{i}-" + new string('y', i * 60));
            await kernel.SendToAsync(reply, SocketFlags.None, new IPEndPoint(NodeIp, 7000), timeout.Token);
            var back = new byte[2048];
            var r = await socket.ReceiveFromAsync(back, timeout.Token);
            Assert.Equal(reply, back[..r.ReceivedBytes]);
            Assert.Equal(kernelEndPoint, r.RemoteEndPoint);
        }

        // Large datagrams: the kernel fragments at the TUN's MTU (1420), our stack reassembles.
        var big = new byte[4000];
        Random.Shared.NextBytes(big);
        await kernel.SendToAsync(big, SocketFlags.None, new IPEndPoint(NodeIp, 7000), timeout.Token);
        var bigBack = new byte[8192];
        var rb = await socket.ReceiveFromAsync(bigBack, timeout.Token);
        Assert.Equal(big, bigBack[..rb.ReceivedBytes]);

        var stats = node.GetStatistics();
        Assert.Equal(0, stats.DropsFor(DropReason.DecryptionFailed));
        Assert.Equal(0, stats.DropsFor(DropReason.SourceNotAllowed));
    }
}

[CollectionDefinition(nameof(InteropCollection), DisableParallelization = true)]
public sealed class InteropCollection
{
}
