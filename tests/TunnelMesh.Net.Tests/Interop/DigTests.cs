using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using TunnelMesh.Net.Dns;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Tests.Interop;

/// <summary>
/// BIND's <c>dig</c> asks the mesh DNS server from the kernel's side, over UDP and TCP: through the
/// TUN test adapter (the kernel talking IP straight to a stack), and through wireguard-go to a
/// whole MeshNode. The assertions read dig's own parse of the answers.
/// </summary>
[Collection(nameof(InteropCollection))]
public sealed partial class DigTests
{
    private static readonly MeshName[] Names =
    [
        new("laptop", [IPAddress.Parse("100.64.0.9"), IPAddress.Parse("fd7a:115c:a1e0::9")]),
        new("printer", [IPAddress.Parse("100.64.0.10")]),
    ];

    [ExternalFact("ip", "dig")]
    public async Task Dig_through_the_tun_adapter_gets_mesh_answers_over_udp_and_tcp()
    {
        await using var kernel = await KernelPeer.CreateAsync();
        var names = new MeshNameTable();
        names.Replace(Names);
        await using var server = new MeshDnsServer(kernel.Stack, names, new MeshDnsServerOptions(), kernel.Drops, NullLogger.Instance);
        await server.StartAsync();

        foreach (bool tcp in new[] { false, true })
        {
            await AssertMeshAnswersAsync(kernel.Namespace, kernel.StackAddress, tcp, () => kernel.Describe());
        }
    }

    [ExternalFact("wireguard-go", "wg", "ip", "unshare", "nsenter", "dig")]
    public async Task Dig_inside_the_mesh_through_wireguard_go_asks_a_mesh_node()
    {
        await using var ns = await NetNamespace.CreateAsync();
        await using var wg = await WireGuardGo.CreateAsync();
        var key = NodePrivateKey.Generate();
        await wg.StartAsync(ns, $"{WireGuardGoInteropTests.KernelIp}/24", "peer", key.PublicKey.ToString(), "allowed-ips", $"{WireGuardGoInteropTests.NodeIp}/32");
        await using var node = await WireGuardGoInteropTests.StartNodeAsync(key, wg, wg.ListenPort);
        node.Names.Replace(Names);
        // The node initiates (wireguard-go learns its endpoint from the handshake) before the kernel asks.
        await node.PingAsync(WireGuardGoInteropTests.KernelIp, TimeSpan.FromSeconds(10));

        foreach (bool tcp in new[] { false, true })
        {
            await AssertMeshAnswersAsync(ns, WireGuardGoInteropTests.NodeIp, tcp, () => wg.Log);
        }
    }

    private static async Task AssertMeshAnswersAsync(NetNamespace ns, IPAddress server, bool tcp, Func<string> describe)
    {
        string how = tcp ? "TCP" : "UDP";
        var a = await DigAsync(ns, server, tcp, "laptop.tunnelmesh", "A");
        Assert.True(a.Status == "NOERROR", $"{how} A: {a.Output}\n{describe()}");
        Assert.Contains("aa", a.Flags);
        Assert.Contains("rd", a.Flags);
        Assert.DoesNotContain("ra", a.Flags);
        Assert.Equal([("laptop.tunnelmesh.", 60, "A", "100.64.0.9")], a.Answers);

        var aaaa = await DigAsync(ns, server, tcp, "Laptop.TunnelMesh", "AAAA");
        Assert.Equal("NOERROR", aaaa.Status);
        Assert.Equal([("Laptop.TunnelMesh.", 60, "AAAA", "fd7a:115c:a1e0::9")], aaaa.Answers);

        var ptr = await DigAsync(ns, server, tcp, "-x", "100.64.0.10");
        Assert.Equal("NOERROR", ptr.Status);
        Assert.Contains("aa", ptr.Flags);
        Assert.Equal([("10.0.64.100.in-addr.arpa.", 60, "PTR", "printer.tunnelmesh.")], ptr.Answers);

        var nx = await DigAsync(ns, server, tcp, "nobody.tunnelmesh", "A");
        Assert.Equal("NXDOMAIN", nx.Status);
        Assert.Contains("aa", nx.Flags);
        Assert.Empty(nx.Answers);
        Assert.Matches(@"(?m)^tunnelmesh\.\s+60\s+IN\s+SOA\s", nx.Output);

        var refused = await DigAsync(ns, server, tcp, "example.com", "A");
        Assert.Equal("REFUSED", refused.Status);
        Assert.DoesNotContain("aa", refused.Flags);
        Assert.Empty(refused.Answers);
    }

    private static async Task<DigResult> DigAsync(NetNamespace ns, IPAddress server, bool tcp, params string[] query)
    {
        string[] args = [$"@{server}", "+tries=2", "+time=3", tcp ? "+tcp" : "+notcp", .. query];
        var r = await ns.ExecAsync("dig", args, TimeSpan.FromSeconds(30));
        var status = StatusPattern().Match(r.Stdout);
        var flags = FlagsPattern().Match(r.Stdout);
        Assert.True(r.ExitCode == 0 && status.Success && flags.Success, $"dig {string.Join(' ', args)} exited {r.ExitCode}:\n{r.All}");
        var answers = new List<(string, int, string, string)>();
        int section = r.Stdout.IndexOf(";; ANSWER SECTION:", StringComparison.Ordinal);
        if (section >= 0)
        {
            foreach (var line in r.Stdout[section..].Split('\n').Skip(1).TakeWhile(l => l.Trim().Length > 0))
            {
                var f = line.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
                answers.Add((f[0], int.Parse(f[1]), f[3], f[4]));
            }
        }

        return new DigResult(status.Groups[1].Value, flags.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries), answers, r.All);
    }

    [GeneratedRegex(@"status: (\w+)")]
    private static partial Regex StatusPattern();

    [GeneratedRegex(@";; flags: ([a-z ]*);")]
    private static partial Regex FlagsPattern();

    private sealed record DigResult(string Status, string[] Flags, List<(string Name, int Ttl, string Type, string Data)> Answers, string Output);
}
