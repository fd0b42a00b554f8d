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
        await using var lab = await Lab.StartAsync(natPmp: true, upnp: false);

        // The node's WireGuard socket and the mapping client, both in the host namespace.
        using var wireGuard = lab.Host.CreateSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        wireGuard.Bind(new IPEndPoint(IPAddress.Any, 41641));
        var drops = new DropCounters();
        using var client = new PortMappingClient(lab.Host.CreateSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp), Lab.Gateway, Lab.HostAddress, drops, TimeProvider.System);

        Assert.Equal(MeshPortMappingProtocol.Pcp, await client.ProbeAsync(CancellationToken.None));

        var lease = await client.MapAsync(41641, TimeSpan.FromHours(2), null, CancellationToken.None);
        Assert.NotNull(lease);
        Assert.Equal(MeshPortMappingProtocol.Pcp, lease.Protocol);
        Assert.Equal(new IPEndPoint(Lab.Wan, 41641), lease.External);
        Assert.True(lease.Lifetime > TimeSpan.Zero);
        Assert.Contains("dport 41641", await lab.RulesAsync());

        // A datagram from the internet to the mapped endpoint reaches the node's socket through the router's DNAT and filter.
        using var outside = lab.OutsideSocket();
        await AssertDeliveredAsync(outside, lease.External, wireGuard, "hello through the mapping");

        // The renewal keeps the same mapping.
        var renewed = await client.MapAsync(41641, TimeSpan.FromHours(2), lease, CancellationToken.None);
        Assert.Equal(lease.External, renewed!.External);

        // NAT-PMP, for a second port: the same gateway, the older protocol.
        using var second = lab.Host.CreateSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        second.Bind(new IPEndPoint(IPAddress.Any, 41642));
        var natPmp = await client.MapAsync(41642, TimeSpan.FromHours(2), new PortMappingLease(MeshPortMappingProtocol.NatPmp, new IPEndPoint(IPAddress.Any, 41642), TimeSpan.Zero, default), CancellationToken.None);
        Assert.NotNull(natPmp);
        Assert.Equal(MeshPortMappingProtocol.NatPmp, natPmp.Protocol);
        Assert.Equal(new IPEndPoint(Lab.Wan, 41642), natPmp.External);
        await AssertDeliveredAsync(outside, natPmp.External, second, "hello through nat-pmp");

        // Deleting removes the router's forwarding rules.
        Assert.True(await client.DeleteAsync(41641, lease, CancellationToken.None));
        Assert.True(await client.DeleteAsync(41642, natPmp, CancellationToken.None));
        string after = await lab.RulesAsync();
        Assert.DoesNotContain("dport 41641", after);
        Assert.DoesNotContain("dport 41642", after);
        Assert.Equal(0, drops.Get(DropReason.PortMappingUnmatched));
    }

    [ExternalFact("ip", "nft", "miniupnpd")]
    public async Task A_gateway_with_only_upnp_igd_gets_a_upnp_mapping_after_pcp_and_nat_pmp_go_unanswered()
    {
        await using var lab = await Lab.StartAsync(natPmp: false, upnp: true);
        using var wireGuard = lab.Host.CreateSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        wireGuard.Bind(new IPEndPoint(IPAddress.Any, 41643));
        Socket InHost(SocketType type) => lab.Host.CreateSocket(AddressFamily.InterNetwork, type, type == SocketType.Stream ? ProtocolType.Tcp : ProtocolType.Udp);
        using var client = new PortMappingClient(InHost(SocketType.Dgram), Lab.Gateway, Lab.HostAddress, new DropCounters(), TimeProvider.System, InHost);

        Assert.Equal(MeshPortMappingProtocol.Upnp, await client.ProbeAsync(CancellationToken.None));
        var lease = await client.MapAsync(41643, TimeSpan.FromHours(2), null, CancellationToken.None);
        Assert.NotNull(lease);
        Assert.Equal(MeshPortMappingProtocol.Upnp, lease.Protocol);
        Assert.Equal(new IPEndPoint(Lab.Wan, 41643), lease.External);
        Assert.Contains("dport 41643", await lab.RulesAsync());

        using var outside = lab.OutsideSocket();
        await AssertDeliveredAsync(outside, lease.External, wireGuard, "hello through upnp");

        var renewed = await client.MapAsync(41643, TimeSpan.FromHours(2), lease, CancellationToken.None);
        Assert.Equal(lease.External, renewed!.External);
        Assert.True(await client.DeleteAsync(41643, lease, CancellationToken.None));
        Assert.DoesNotContain("dport 41643", await lab.RulesAsync());
    }

    /// <summary>The three namespaces, the router's rules, the STUN answerer and miniupnpd; all removed on dispose.</summary>
    private sealed class Lab : IAsyncDisposable
    {
        public static readonly IPAddress Gateway = IPAddress.Parse("198.51.100.1");
        public static readonly IPAddress HostAddress = IPAddress.Parse("198.51.100.2");
        public static readonly IPAddress Wan = IPAddress.Parse("203.0.113.1");

        private readonly List<NetNamespace> _namespaces = [];
        private readonly CancellationTokenSource _stop = new();
        private readonly StringBuilder _log = new();
        private string _dir = "";
        private Socket? _stunSocket;
        private Task? _stun;
        private Process? _daemon;

        public NetNamespace Router => _namespaces[0];

        public NetNamespace Host => _namespaces[1];

        public NetNamespace Internet => _namespaces[2];

        public static async Task<Lab> StartAsync(bool natPmp, bool upnp)
        {
            var lab = new Lab();
            try
            {
                await lab.BuildAsync(natPmp, upnp);
                return lab;
            }
            catch
            {
                await lab.DisposeAsync();
                throw;
            }
        }

        public Task<string> RulesAsync() => Router.ExecCheckAsync("nft", "list", "chain", "inet", "tmpm", "prerouting_miniupnpd");

        public Socket OutsideSocket()
        {
            var s = Internet.CreateSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Parse("203.0.113.2"), 0));
            return s;
        }

        private async Task BuildAsync(bool natPmp, bool upnp)
        {
            _namespaces.Add(await NetNamespace.CreateAsync("tmpr"));
            _namespaces.Add(await NetNamespace.CreateAsync("tmph"));
            _namespaces.Add(await NetNamespace.CreateAsync("tmpi"));
            await ProcessRunner.CheckAsync("ip", "link", "add", "lan0", "netns", Router.Name, "type", "veth", "peer", "name", "eth0", "netns", Host.Name);
            await ProcessRunner.CheckAsync("ip", "link", "add", "wan0", "netns", Router.Name, "type", "veth", "peer", "name", "eth0", "netns", Internet.Name);
            await Router.ExecCheckAsync("ip", "addr", "add", "198.51.100.1/24", "dev", "lan0");
            await Router.ExecCheckAsync("ip", "addr", "add", "203.0.113.1/24", "dev", "wan0");
            await Router.ExecCheckAsync("ip", "link", "set", "lan0", "up");
            await Router.ExecCheckAsync("ip", "link", "set", "wan0", "up");
            await Router.ExecCheckAsync("sysctl", "-qw", "net.ipv4.ip_forward=1");
            await Host.ExecCheckAsync("ip", "addr", "add", "198.51.100.2/24", "dev", "eth0");
            await Host.ExecCheckAsync("ip", "link", "set", "eth0", "up");
            await Host.ExecCheckAsync("ip", "route", "add", "default", "via", "198.51.100.1");
            await Internet.ExecCheckAsync("ip", "addr", "add", "203.0.113.2/24", "dev", "eth0");
            await Internet.ExecCheckAsync("ip", "link", "set", "eth0", "up");

            _dir = Directory.CreateTempSubdirectory("tmupnp").FullName;
            string rules = Path.Combine(_dir, "router.nft");
            await File.WriteAllTextAsync(rules, """
                table inet tmpm {
                  chain forward { type filter hook forward priority 0; policy drop;
                    ct state established,related accept;
                    iifname "lan0" accept;
                    jump miniupnpd; }
                  chain miniupnpd { }
                  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
                  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd;
                    ip saddr 198.51.100.0/24 oifname "wan0" masquerade; }
                  chain prerouting_miniupnpd { }
                  chain postrouting_miniupnpd { }
                }
                """);
            await Router.ExecCheckAsync("nft", "-f", rules);

            _stunSocket = Internet.CreateSocket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            _stunSocket.Bind(new IPEndPoint(IPAddress.Parse("203.0.113.2"), 3478));
            _stun = AnswerStunAsync(_stunSocket, _stop.Token);

            string config = Path.Combine(_dir, "miniupnpd.conf");
            await MiniupnpdConfig.WriteAsync(config, "203.0.113.2", "tmpm", natPmp, upnp);
            _daemon = ProcessRunner.Start("ip", ["netns", "exec", Router.Name, "miniupnpd", "-d", "-f", config, "-P", Path.Combine(_dir, "pid")], _log);
            string ready = upnp ? "HTTP listening on port" : "Listening for NAT-PMP/PCP traffic";
            await Until(() => Text(_log).Contains(ready, StringComparison.Ordinal), "miniupnpd listens", _log);
            Assert.Contains("Port forwarding is now enabled", Text(_log));
        }

        public async ValueTask DisposeAsync()
        {
            if (_daemon is { } daemon)
            {
                if (!daemon.HasExited)
                {
                    daemon.Kill();
                    using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await daemon.WaitForExitAsync(wait.Token);
                }

                daemon.Dispose();
            }

            await _stop.CancelAsync();
            if (_stun is not null)
            {
                await _stun.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            _stunSocket?.Dispose();
            foreach (var ns in _namespaces)
            {
                await ns.DisposeAsync();
            }

            if (_dir.Length > 0)
            {
                Directory.Delete(_dir, recursive: true);
            }

            _stop.Dispose();
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
