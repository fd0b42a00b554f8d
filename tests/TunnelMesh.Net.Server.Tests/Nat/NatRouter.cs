using System.Net;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Nat;

/// <summary>How a lab router translates addresses.</summary>
public enum NatKind
{
    /// <summary>nftables <c>masquerade</c>: the source port is kept where it is free, so one socket keeps one public port for every destination (endpoint-independent mapping).</summary>
    Easy,

    /// <summary>nftables <c>masquerade random</c>: every new flow gets a random public port (endpoint-dependent mapping, "symmetric NAT").</summary>
    Hard,
}

/// <summary>
/// A home router in the lab: its own namespace with <c>wan0</c> on the internet segment and
/// <c>lan0</c> on a LAN switch (a bridge in a namespace of its own, so the router's forward filter
/// never sees LAN-internal frames even where <c>br_netfilter</c> is loaded). It forwards, masquerades
/// out of <c>wan0</c>, and filters forwarded traffic statefully as home routers do: policy drop,
/// LAN to WAN allowed, and back only <c>ct state established,related</c>; unsolicited packets from
/// the WAN to the router itself are dropped too.
/// </summary>
/// <remarks>
/// The input filter matters for hole punching, as on real home routers: a peer's first probe often
/// reaches this router before our own probe leaves it. Dropped by the input filter, that packet's
/// conntrack entry is never confirmed. Without the filter the entry would stay (unreplied, renewed by
/// every later probe), and the outgoing flow to that peer would clash with it in the NAT and get
/// another public port, so neither side's probes would ever get through.
/// </remarks>
public sealed class NatRouter : IAsyncDisposable
{
    private int _nextHost = 10;

    private NatRouter(NetNamespace router, NetNamespace lanSwitch, string name, NatKind kind, IPAddress wan, string lanPrefix)
    {
        Namespace = router;
        Switch = lanSwitch;
        Name = name;
        Kind = kind;
        WanAddress = wan;
        LanPrefix = lanPrefix;
    }

    public string Name { get; }

    public NatKind Kind { get; }

    public NetNamespace Namespace { get; }

    /// <summary>The namespace holding the LAN bridge <c>br0</c>.</summary>
    public NetNamespace Switch { get; }

    /// <summary>The router's public address on 203.0.113.0/24.</summary>
    public IPAddress WanAddress { get; private set; }

    /// <summary>The first three octets of the LAN (e.g. "192.0.2"); the router is .1.</summary>
    public string LanPrefix { get; }

    public IPAddress LanGateway => IPAddress.Parse(LanPrefix + ".1");

    internal static async Task<NatRouter> CreateAsync(NetNamespace internet, string port, string name, NatKind kind, IPAddress wan, string lanPrefix)
    {
        var router = await NetNamespace.CreateAsync("tmnr");
        NetNamespace? lanSwitch = null;
        try
        {
            lanSwitch = await NetNamespace.CreateAsync("tmns");
            var r = new NatRouter(router, lanSwitch, name, kind, wan, lanPrefix);
            await r.WireAsync(internet, port);
            return r;
        }
        catch
        {
            if (lanSwitch is not null)
            {
                await lanSwitch.DisposeAsync();
            }

            await router.DisposeAsync();
            throw;
        }
    }

    private async Task WireAsync(NetNamespace internet, string port)
    {
        // WAN: wan0 here, its peer a port of the internet bridge (names only need to be unique inside each namespace).
        await ProcessRunner.CheckAsync("ip", "-n", Namespace.Name, "link", "add", "wan0", "type", "veth", "peer", "name", port, "netns", internet.Name);
        await internet.ExecCheckAsync("ip", "link", "set", port, "master", "br0", "up");
        await Namespace.ExecCheckAsync("ip", "addr", "add", $"{WanAddress}/24", "dev", "wan0");
        await Namespace.ExecCheckAsync("ip", "link", "set", "wan0", "up");

        // LAN: a bridge in the switch namespace; lan0 here is one of its ports.
        await Switch.ExecCheckAsync("ip", "link", "add", "br0", "type", "bridge");
        await Switch.ExecCheckAsync("ip", "link", "set", "br0", "up");
        await ProcessRunner.CheckAsync("ip", "-n", Namespace.Name, "link", "add", "lan0", "type", "veth", "peer", "name", "gw", "netns", Switch.Name);
        await Switch.ExecCheckAsync("ip", "link", "set", "gw", "master", "br0", "up");
        await Namespace.ExecCheckAsync("ip", "addr", "add", $"{LanGateway}/24", "dev", "lan0");
        await Namespace.ExecCheckAsync("ip", "link", "set", "lan0", "up");

        // /proc/sys/net belongs to the namespace of the process that writes it (no procps needed for sysctl).
        await Namespace.ExecCheckAsync("sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward");
        string masquerade = Kind == NatKind.Hard ? "masquerade random" : "masquerade";
        string rules = $$"""
            table ip nat {
              chain postrouting { type nat hook postrouting priority srcnat; policy accept; oifname "wan0" {{masquerade}}; }
            }
            table inet filter {
              chain input {
                type filter hook input priority filter; policy drop;
                ct state established,related accept
                iifname { "lo", "lan0" } accept
              }
              chain forward {
                type filter hook forward priority filter; policy drop;
                ct state established,related accept
                iifname "lan0" oifname "wan0" accept
              }
            }
            """;
        var r = await ProcessRunner.RunAsync("ip", ["netns", "exec", Namespace.Name, "nft", "-f", "-"], stdin: rules);
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"[{Namespace.Name}] nft exited {r.ExitCode}: {r.All}\n{rules}");
        }
    }

    /// <summary>The next free host address on the LAN.</summary>
    internal IPAddress NextLanAddress() => IPAddress.Parse($"{LanPrefix}.{Interlocked.Increment(ref _nextHost)}");

    /// <summary><c>conntrack -F</c> in the router: every mapping and every filter state forgotten at once.</summary>
    public Task FlushConntrackAsync() => Namespace.ExecCheckAsync("conntrack", "-F");

    /// <summary>The number of conntrack entries the router holds (<c>conntrack -C</c>).</summary>
    public async Task<int> ConntrackCountAsync() =>
        int.Parse((await Namespace.ExecCheckAsync("conntrack", "-C")).Trim(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The ISP renumbers the router: its WAN address is replaced by <paramref name="wan"/> (masquerade forgets the old mappings).</summary>
    public async Task RenumberWanAsync(IPAddress wan)
    {
        // The new address joins the same /24 as a secondary one; promoted when the primary goes, not deleted with it.
        await Namespace.ExecCheckAsync("sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/wan0/promote_secondaries");
        await Namespace.ExecCheckAsync("ip", "addr", "add", $"{wan}/24", "dev", "wan0");
        await Namespace.ExecCheckAsync("ip", "addr", "del", $"{WanAddress}/24", "dev", "wan0");
        WanAddress = wan;
    }

    public async ValueTask DisposeAsync()
    {
        await Namespace.DisposeAsync();
        await Switch.DisposeAsync();
    }
}
