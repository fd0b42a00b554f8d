using System.Diagnostics;
using System.Text;
using System.Text.Json;
using TunnelMesh.Net.Cli;
using TunnelMesh.Net.Server.Tests.Support;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.NetCheck;

/// <summary>
/// <c>tunnelmesh netcheck</c> behind a real Linux NAT: an "internet" namespace (203.0.113.0/24) runs
/// <c>tunnelmesh serve</c> with STUN on two ports; a router namespace masquerades a LAN
/// (198.51.100.0/24) with a stateful forward filter, as a home router does; a host namespace behind
/// it runs <c>tunnelmesh join</c> on default options. The test asks the node through its local API
/// (a Unix socket in its state directory) and reads the report.
/// </summary>
public sealed class NetCheckNamespaceTests
{
    private const string Admin = "netcheck-test-admin-credential-0123";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [ExternalFact("ip", "nft")]
    public Task Behind_masquerade_the_nat_is_easy() => RunAsync("masquerade", expectHard: false, miniupnpd: false);

    [ExternalFact("ip", "nft")]
    public Task Behind_masquerade_random_the_nat_is_hard() => RunAsync("masquerade random", expectHard: true, miniupnpd: false);

    [ExternalFact("ip", "nft", "miniupnpd")]
    public Task Behind_a_router_running_miniupnpd_the_node_maps_its_port_and_publishes_it() => RunAsync("masquerade random", expectHard: true, miniupnpd: true);

    [ExternalFact("ip", "nft", "miniupnpd")]
    public Task With_no_port_mapping_the_node_maps_nothing_and_netcheck_still_sees_the_offer() => RunAsync("masquerade random", expectHard: true, miniupnpd: true, portMapping: false);

    private static async Task RunAsync(string masquerade, bool expectHard, bool miniupnpd, bool portMapping = true)
    {
        await using var internet = await NetNamespace.CreateAsync("tmci");
        await using var router = await NetNamespace.CreateAsync("tmcr");
        await using var host = await NetNamespace.CreateAsync("tmch");
        await ProcessRunner.CheckAsync("ip", "link", "add", "wan0", "netns", router.Name, "type", "veth", "peer", "name", "eth0", "netns", internet.Name);
        await ProcessRunner.CheckAsync("ip", "link", "add", "lan0", "netns", router.Name, "type", "veth", "peer", "name", "eth0", "netns", host.Name);
        await internet.ExecCheckAsync("ip", "addr", "add", "203.0.113.10/24", "dev", "eth0");
        await internet.ExecCheckAsync("ip", "link", "set", "eth0", "up");
        await router.ExecCheckAsync("ip", "addr", "add", "203.0.113.1/24", "dev", "wan0");
        await router.ExecCheckAsync("ip", "addr", "add", "198.51.100.1/24", "dev", "lan0");
        await router.ExecCheckAsync("ip", "link", "set", "wan0", "up");
        await router.ExecCheckAsync("ip", "link", "set", "lan0", "up");
        await router.ExecCheckAsync("sysctl", "-qw", "net.ipv4.ip_forward=1");
        await host.ExecCheckAsync("ip", "addr", "add", "198.51.100.2/24", "dev", "eth0");
        await host.ExecCheckAsync("ip", "link", "set", "eth0", "up");
        await host.ExecCheckAsync("ip", "route", "add", "default", "via", "198.51.100.1");

        string dir = Directory.CreateTempSubdirectory("tmnetcheck").FullName;
        string rules = Path.Combine(dir, "router.nft");
        await File.WriteAllTextAsync(rules, $$"""
            table inet tmnc {
              chain forward { type filter hook forward priority 0; policy drop;
                ct state established,related accept;
                iifname "lan0" accept;
                jump miniupnpd; }
              chain miniupnpd { }
              chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
              chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd;
                ip saddr 198.51.100.0/24 oifname "wan0" {{masquerade}}; }
              chain prerouting_miniupnpd { }
              chain postrouting_miniupnpd { }
            }
            """);
        await router.ExecCheckAsync("nft", "-f", rules);

        var processes = new List<(Process Process, StringBuilder Output)>();
        try
        {
            string url = "http://203.0.113.10:8080";
            var serve = Start(internet, dir, processes, "serve", "--listen", url, "--db", Path.Combine(dir, "c.db"), "--admin-key", Admin); // default STUN ports: 3478 and 3479
            await Until(() => Text(serve).Contains("coordinator listening", StringComparison.Ordinal), "serve listens", serve);
            if (miniupnpd)
            {
                // After serve (miniupnpd checks its WAN with the coordinator's STUN responder) and before the node
                // starts (its first attempt would otherwise find no server and wait a minute to retry).
                var (_, daemon) = await StartMiniupnpdAsync(router, dir, processes);
                await Until(() => Text(daemon).Contains("Listening for NAT-PMP/PCP traffic", StringComparison.Ordinal), "miniupnpd listens", daemon);
                Assert.True(Text(daemon).Contains("Port forwarding is now enabled", StringComparison.Ordinal), Text(daemon)); // its STUN check of the WAN passed against the coordinator's responder
            }

            Assert.Contains("203.0.113.10:3478, 203.0.113.10:3479", Text(serve));

            var key = await internet.ExecAsync(Dotnet, [CliPath, "authkey", "create", "--server", url, "--admin-key", Admin], TimeSpan.FromSeconds(30));
            Assert.True(key.ExitCode == 0, key.All);

            string state = Path.Combine(dir, "node");
            var join = Start(host, dir, processes, ["join", "--server", url, "--auth-key", key.Stdout.Trim(), "--hostname", "natted", "--state-dir", state, .. portMapping ? Array.Empty<string>() : ["--no-port-mapping"]]);
            await Until(() => File.Exists(Path.Combine(state, LocalApiClient.SocketName)), "the node serves its local API", join);

            JsonElement report = default;
            await UntilAsync(async () =>
            {
                var (rc, text) = await RunCliAsync("netcheck", "--state-dir", state, "--json");
                Assert.True(rc == 0, text);
                report = JsonDocument.Parse(text).RootElement;
                return !(miniupnpd && portMapping) || report.GetProperty("portMappedEndpoint").ValueKind == JsonValueKind.String;
            }, "the report (with the node's port mapping, when the router offers one)", join);

            var stun = report.GetProperty("stun").EnumerateArray().ToList();
            Assert.Equal(2, stun.Count);
            var reflexive = stun.Select(p => p.GetProperty("reflexive").GetString()!).ToList();
            Assert.All(reflexive, r => Assert.StartsWith("203.0.113.1:", r)); // the router's WAN address
            Assert.Equal(reflexive[0], report.GetProperty("ipv4").GetString());
            Assert.Equal(expectHard ? "hard" : "easy", report.GetProperty("nat").GetString());
            if (expectHard)
            {
                Assert.NotEqual(reflexive[0], reflexive[1]);
            }
            else
            {
                Assert.Equal(reflexive[0], reflexive[1]);
            }

            Assert.True(report.GetProperty("relayLatencyMs").GetDouble() > 0);
            if (miniupnpd && !portMapping)
            {
                // Off: the node asked for nothing (the router holds no rule for it); netcheck's probe still sees PCP.
                Assert.Equal("pcp", report.GetProperty("portMapping").GetString());
                Assert.Equal(JsonValueKind.Null, report.GetProperty("portMappedEndpoint").ValueKind);
            }
            else if (miniupnpd)
            {
                Assert.Equal("pcp", report.GetProperty("portMapping").GetString());
                string mapped = report.GetProperty("portMappedEndpoint").GetString()!;
                Assert.StartsWith("203.0.113.1:", mapped);

                // The node published the mapped endpoint to the coordinator as one of its candidates.
                await UntilAsync(async () =>
                {
                    var nodes = await internet.ExecAsync("curl", ["-sf", "-H", $"Authorization: Bearer {Admin}", $"{url}/api/v1/nodes"], TimeSpan.FromSeconds(10));
                    return nodes.ExitCode == 0 && nodes.Stdout.Contains(mapped, StringComparison.Ordinal);
                }, $"the coordinator lists {mapped} among the node's endpoints", join);
            }
            else
            {
                Assert.Equal("none", report.GetProperty("portMapping").GetString());
            }

            var (rcText, plain) = await RunCliAsync("netcheck", "--state-dir", state);
            Assert.Equal(0, rcText);
            Assert.Contains($"NAT:          {(expectHard ? "hard" : "easy")}", plain);
            Assert.Contains($"IPv4:         {reflexive[0]}", plain);
            if (miniupnpd && !portMapping)
            {
                // Checked last: two netchecks (seconds) after the node's STUN answers woke its mapper, which,
                // were it on, maps within milliseconds of a PCP answer (the case above shows it).
                Assert.DoesNotContain("dnat", await router.ExecCheckAsync("nft", "list", "chain", "inet", "tmnc", "prerouting_miniupnpd"));
            }
        }
        finally
        {
            foreach (var (p, _) in processes)
            {
                if (!p.HasExited)
                {
                    p.Kill(entireProcessTree: true);
                    using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await p.WaitForExitAsync(wait.Token);
                }

                p.Dispose();
            }

            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The tool's assembly, built beside the tests (the project reference copies it with its runtime config).</summary>
    private static string CliPath => Path.Combine(AppContext.BaseDirectory, "tunnelmesh.dll");

    /// <summary>The dotnet host running these tests (its runtime directory is dotnet/shared/Microsoft.NETCore.App/VERSION/), else the one on PATH.</summary>
    private static string Dotnet
    {
        get
        {
            string host = Path.GetFullPath(Path.Combine(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", "..", "dotnet"));
            return File.Exists(host) ? host : "dotnet";
        }
    }

    private static StringBuilder Start(NetNamespace ns, string dir, List<(Process, StringBuilder)> processes, params string[] args)
    {
        var output = new StringBuilder();
        var process = ProcessRunner.Start("ip", ["netns", "exec", ns.Name, Dotnet, CliPath, .. args], output, new Dictionary<string, string> { ["HOME"] = dir });
        processes.Add((process, output));
        return output;
    }

    private static async Task<(Process, StringBuilder)> StartMiniupnpdAsync(NetNamespace router, string dir, List<(Process, StringBuilder)> processes)
    {
        // miniupnpd refuses to map while its WAN address is reserved, as every TEST-NET range is, unless STUN
        // shows the WAN unfiltered: it asks the coordinator's STUN responder (see MiniupnpdPortMappingTests).
        string config = Path.Combine(dir, "miniupnpd.conf");
        await MiniupnpdConfig.WriteAsync(config, "203.0.113.10", "tmnc");
        var output = new StringBuilder();
        var process = ProcessRunner.Start("ip", ["netns", "exec", router.Name, "miniupnpd", "-d", "-f", config, "-P", Path.Combine(dir, "miniupnpd.pid")], output);
        processes.Add((process, output));
        return (process, output);
    }

    private static async Task<(int Code, string Output)> RunCliAsync(params string[] args)
    {
        var stdout = new SyncWriter();
        var stderr = new SyncWriter();
        using var timeout = new CancellationTokenSource(Deadline);
        int rc = await TunnelMeshCli.RunAsync(args, stdout, stderr, timeout.Token);
        return (rc, rc == 0 ? stdout.Text : stderr.Text);
    }

    private static string Text(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString();
        }
    }

    private static Task Until(Func<bool> condition, string what, StringBuilder log) => UntilAsync(() => Task.FromResult(condition()), what, log);

    private static async Task UntilAsync(Func<Task<bool>> condition, string what, StringBuilder log)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(deadline.Elapsed < Deadline, $"timed out waiting for: {what}\n{Text(log)}");
            await Task.Delay(100);
        }
    }
}
