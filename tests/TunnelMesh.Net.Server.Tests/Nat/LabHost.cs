using System.Net;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Nat;

/// <summary>
/// A machine on a router's LAN: its own namespace with <c>lo</c> and <c>eth0</c> (one LAN address,
/// default route via the router) and nothing else, so a node on default options there binds,
/// publishes and probes only what a machine behind a home router has.
/// </summary>
public sealed class LabHost : IAsyncDisposable
{
    private LabHost(NetNamespace ns, NatRouter router, IPAddress address)
    {
        Namespace = ns;
        Router = router;
        Address = address;
    }

    public NetNamespace Namespace { get; }

    public NatRouter Router { get; }

    /// <summary>The host's current LAN address.</summary>
    public IPAddress Address { get; private set; }

    internal static async Task<LabHost> CreateAsync(NatRouter router, string port)
    {
        var ns = await NetNamespace.CreateAsync("tmnh");
        try
        {
            var address = router.NextLanAddress();
            await ProcessRunner.CheckAsync("ip", "-n", ns.Name, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", router.Switch.Name);
            await router.Switch.ExecCheckAsync("ip", "link", "set", port, "master", "br0", "up");
            await ns.ExecCheckAsync("ip", "addr", "add", $"{address}/24", "dev", "eth0");
            await ns.ExecCheckAsync("ip", "link", "set", "eth0", "up");
            await ns.ExecCheckAsync("ip", "route", "add", "default", "via", router.LanGateway.ToString());
            return new LabHost(ns, router, address);
        }
        catch
        {
            await ns.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// The host gets a new LAN address (as after a DHCP change or a move to another access point):
    /// the old one is removed (taking the default route with it), the new one added and the route
    /// put back. Sockets bound to the wildcard address keep working from the new address.
    /// </summary>
    public async Task RenumberAsync()
    {
        var next = Router.NextLanAddress();
        await Namespace.ExecCheckAsync("ip", "addr", "del", $"{Address}/24", "dev", "eth0");
        await Namespace.ExecCheckAsync("ip", "addr", "add", $"{next}/24", "dev", "eth0");
        await Namespace.ExecCheckAsync("ip", "route", "replace", "default", "via", Router.LanGateway.ToString());
        Address = next;
    }

    public ValueTask DisposeAsync() => Namespace.DisposeAsync();
}
