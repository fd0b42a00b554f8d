using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.Transport.PortMapping;
using TunnelMesh.Net.Wire.Stun;

namespace TunnelMesh.Net.Tests.Transport.PortMapping;

/// <summary>
/// The port-mapping client against a real gateway: miniupnpd (Debian miniupnpd-nftables) with
/// NAT-PMP and PCP on, its nftables backend, in a router namespace that masquerades a LAN
/// (198.51.100.0/24) onto a WAN (203.0.113.0/24), with a stateful forward filter that drops new
/// inbound flows unless miniupnpd opened them.
/// </summary>
/// <remarks>
/// miniupnpd refuses to forward ports when its WAN address is private or reserved, and every TEST-NET
/// range is reserved to it; it accepts one when a STUN server shows the WAN unfiltered
/// (<c>ext_perform_stun</c>: four binding requests from four sockets, all answered with their own
/// source). So the internet namespace runs a small STUN responder for it; nothing leaves the namespaces.
/// </remarks>
public sealed class MiniupnpdPortMappingTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [ExternalFact("ip", "nft", "miniupnpd")]
    public async Task Miniupnpd_grants_pcp_and_nat_pmp_mappings_that_carry_wan_datagrams_to_the_host_and_deletes_them()
    {
        await using var router = await NetNamespace.CreateAsync("tmpr");
        await using var host = await NetNamespace.CreateAsync("tmph");
        await using var internet = await NetNamespace.CreateAsync("tmpi");
        await ProcessRunner.CheckAsync("ip", "link", "add", "lan0", "netns", router.Name, "type", "veth", "peer", "name", "eth0", "netns", host.Name);
        await ProcessRunner.CheckAsync("ip", "link", "add", "wan0", "netns", router.Name, "type", "veth", "peer", "name", "eth0", "netns", internet.Name);
        await router.ExecCheckAsync("ip", "addr", "add", "198.51.100.1/24", "dev", "lan0");
        await router.ExecCheckAsync("ip", "addr", "add", "203.0.113.1/24", "dev", "wan0");
        await router.ExecCheckAsync("ip", "link", "set", "lan0", "up");
        await router.ExecCheckAsync("ip", "link", "set", "wan0", "up");
        await router.ExecCheckAsync("sysctl", "-qw", "net.ipv4.ip_forward=1");
        await host.ExecCheckAsync("ip", "addr", "add", "198.51.100.2/24", "dev", "eth0");
        await host.ExecCheckAsync("ip", "link", "set", "eth0", "up");
        await host.ExecCheckAsync("ip", "route", "add", "default", "via", "198.51.100.1");
        await internet.ExecCheckAsync("ip", "addr", "add", "203.0.113.2/24", "dev", "eth0");
        await internet.ExecCheckAsync("ip", "link", "set", "eth0", "up");

        string dir = Directory.CreateTempSubdirectory("tmupnp").FullName;
        string rules = Path.Combine(dir, "router.nft");
        await File.WriteAllTextAsync(rules, """
            table inet tmpm {
              chain forward { type filter hook forward priority 0; policy drop;
                ct state established,related accept;
                iifname "lan0" accept;
                jump miniupnpd; }
              chain miniupnpd { }
              chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
              chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd;
                oifname "wan0" masquerade; }
              chain prerouting_miniupnpd { }
              chain postrouting_miniupnpd { }
            }
            """);
        await router.ExecCheckAsync("nft", "-f", rules);

        using var stop = new CancellationTokenSource();
        using var stunSocket = internet.CreateSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        stunSocket.Bind(new IPEndPoint(IPAddress.Parse("203.0.113.2"), 3478));
        var stun = AnswerStunAsync(stunSocket, stop.Token);

        string config = Path.Combine(dir, "miniupnpd.conf");
        await File.WriteAllTextAsync(config, $"""
            ext_ifname=wan0
            listening_ip=lan0
            ext_perform_stun=yes
            ext_stun_host=203.0.113.2
            ext_stun_port=3478
            enable_natpmp=yes
            enable_upnp=no
            ipv6_disable=yes
            secure_mode=yes
            lease_file={Path.Combine(dir, "leases")}
            upnp_table_name=tmpm
            upnp_nat_table_name=tmpm
            upnp_forward_chain=miniupnpd
            upnp_nat_chain=prerouting_miniupnpd
            upnp_nat_postrouting_chain=postrouting_miniupnpd
            allow 1024-65535 198.51.100.0/24 1024-65535
            deny 0-65535 0.0.0.0/0 0-65535
            """);
        var log = new StringBuilder();
        using var daemon = ProcessRunner.Start("ip", ["netns", "exec", router.Name, "miniupnpd", "-d", "-f", config, "-P", Path.Combine(dir, "pid")], log);
        try
        {
            await Until(() => Text(log).Contains("Listening for NAT-PMP/PCP traffic", StringComparison.Ordinal), "miniupnpd listens", log);
            Assert.Contains("Port forwarding is now enabled", Text(log));

            // The node's WireGuard socket and the mapping client, both in the host namespace.
            using var wireGuard = host.CreateSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            wireGuard.Bind(new IPEndPoint(IPAddress.Any, 41641));
            var drops = new DropCounters();
            using var client = new PortMappingClient(host.CreateSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp), IPAddress.Parse("198.51.100.1"), IPAddress.Parse("198.51.100.2"), drops, TimeProvider.System);

            Assert.Equal(MeshPortMappingProtocol.Pcp, await client.ProbeAsync(CancellationToken.None));

            var lease = await client.MapAsync(41641, TimeSpan.FromHours(2), null, CancellationToken.None);
            Assert.NotNull(lease);
            Assert.Equal(MeshPortMappingProtocol.Pcp, lease.Protocol);
            Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.1"), 41641), lease.External);
            Assert.True(lease.Lifetime > TimeSpan.Zero);
            Assert.Contains("dport 41641", await router.ExecCheckAsync("nft", "list", "chain", "inet", "tmpm", "prerouting_miniupnpd"));

            // A datagram from the internet to the mapped endpoint reaches the node's socket through the router's DNAT and filter.
            using var outside = internet.CreateSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            outside.Bind(new IPEndPoint(IPAddress.Parse("203.0.113.2"), 0));
            await AssertDeliveredAsync(outside, lease.External, wireGuard, "hello through the mapping");

            // The renewal keeps the same mapping.
            var renewed = await client.MapAsync(41641, TimeSpan.FromHours(2), lease, CancellationToken.None);
            Assert.Equal(lease.External, renewed!.External);

            // NAT-PMP, for a second port: the same gateway, the older protocol.
            using var second = host.CreateSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            second.Bind(new IPEndPoint(IPAddress.Any, 41642));
            var natPmp = await client.MapAsync(41642, TimeSpan.FromHours(2), new PortMappingLease(MeshPortMappingProtocol.NatPmp, new IPEndPoint(IPAddress.Any, 41642), TimeSpan.Zero, default), CancellationToken.None);
            Assert.NotNull(natPmp);
            Assert.Equal(MeshPortMappingProtocol.NatPmp, natPmp.Protocol);
            Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.1"), 41642), natPmp.External);
            await AssertDeliveredAsync(outside, natPmp.External, second, "hello through nat-pmp");

            // Deleting removes the router's forwarding rules.
            Assert.True(await client.DeleteAsync(41641, lease, CancellationToken.None));
            Assert.True(await client.DeleteAsync(41642, natPmp, CancellationToken.None));
            string after = await router.ExecCheckAsync("nft", "list", "chain", "inet", "tmpm", "prerouting_miniupnpd");
            Assert.DoesNotContain("dport 41641", after);
            Assert.DoesNotContain("dport 41642", after);
            Assert.Equal(0, drops.Get(DropReason.PortMappingUnmatched));
        }
        finally
        {
            if (!daemon.HasExited)
            {
                daemon.Kill();
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await daemon.WaitForExitAsync(wait.Token);
            }

            await stop.CancelAsync();
            await stun.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task AssertDeliveredAsync(Socket from, IPEndPoint to, Socket receiver, string text)
    {
        byte[] payload = Encoding.ASCII.GetBytes(text);
        var buffer = new byte[256];
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            await from.SendToAsync(payload, SocketFlags.None, to);
            using var wait = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
            try
            {
                var r = await receiver.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), wait.Token);
                Assert.Equal(text, Encoding.ASCII.GetString(buffer, 0, r.ReceivedBytes));
                Assert.Equal(IPAddress.Parse("203.0.113.2"), ((IPEndPoint)r.RemoteEndPoint).Address);
                return;
            }
            catch (OperationCanceledException)
            {
                Assert.True(deadline.Elapsed < Deadline, $"no datagram to {to} reached the host");
            }
        }
    }

    /// <summary>Answers every binding request with its source address (XOR-MAPPED-ADDRESS), whatever CHANGE-REQUEST asks: the WAN is not filtered.</summary>
    private static async Task AnswerStunAsync(Socket socket, CancellationToken cancellationToken)
    {
        var request = new byte[548];
        var response = new byte[64];
        while (!cancellationToken.IsCancellationRequested)
        {
            var r = await socket.ReceiveFromAsync(request, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cancellationToken);
            if (r.ReceivedBytes < StunSpec.HeaderLength)
            {
                continue;
            }

            var id = StunTransactionId.Read(request.AsSpan(8, 12));
            int n = StunMessage.WriteBindingSuccess(response, id, (IPEndPoint)r.RemoteEndPoint, false);
            await socket.SendToAsync(response.AsMemory(0, n), SocketFlags.None, r.RemoteEndPoint, cancellationToken);
        }
    }

    private static string Text(StringBuilder log)
    {
        lock (log)
        {
            return log.ToString();
        }
    }

    private static async Task Until(Func<bool> condition, string what, StringBuilder log)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(deadline.Elapsed < Deadline, $"timed out waiting for: {what}\n{Text(log)}");
            await Task.Delay(50);
        }
    }
}
