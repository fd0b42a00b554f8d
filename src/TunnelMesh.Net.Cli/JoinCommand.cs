using System.CommandLine;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Forwarding;
using TunnelMesh.Net.Socks;

namespace TunnelMesh.Net.Cli;

/// <summary><c>tunnelmesh join</c>: run a node in the foreground (userspace mode) until Ctrl-C.</summary>
internal static class JoinCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var server = TunnelMeshCli.ServerOption();
        var authKey = new Option<string?>("--auth-key")
        {
            Description = "The auth key to join with (not needed again once the state directory holds the node's token). Default: $TUNNELMESH_AUTH_KEY.",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TUNNELMESH_AUTH_KEY"),
        };
        var hostname = new Option<string?>("--hostname") { Description = "The name to ask for (default: this machine's name)." };
        var ephemeral = new Option<bool>("--ephemeral") { Description = "Ask to be removed from the mesh after being offline for a while." };
        var port = new Option<int>("--port") { Description = "The UDP port for WireGuard (0: any).", DefaultValueFactory = _ => 0 };
        var listenAddress = new Option<string?>("--listen-address") { Description = "The local address the WireGuard UDP socket binds to (default: all, IPv4 and IPv6)." };
        var noPortMapping = new Option<bool>("--no-port-mapping") { Description = "Do not ask the gateway (PCP, NAT-PMP, UPnP IGD) to map the WireGuard port." };
        var stateDir = TunnelMeshCli.StateDirOption();
        var forward = ForwardOption.Create();
        var socks5 = Socks5Option.Create();
        var verbose = new Option<bool>("--verbose") { Description = "Log at debug level." };
        var command = new Command("join", "Join a mesh and run the node in the foreground (userspace networking, no root needed). Ctrl-C leaves.") { server, authKey, hostname, ephemeral, port, listenAddress, noPortMapping, stateDir, forward, socks5, verbose };
        command.SetAction(async (parse, ct) =>
        {
            string dir = parse.GetValue(stateDir)!;
            using var loggers = LoggerFactory.Create(b => b
                .SetMinimumLevel(parse.GetValue(verbose) ? LogLevel.Debug : LogLevel.Information)
                .AddSimpleConsole(o => o.SingleLine = true));
            var options = new MeshNodeOptions
            {
                ControlUrl = parse.GetValue(server),
                AuthKey = parse.GetValue(authKey),
                Hostname = parse.GetValue(hostname),
                StateDirectory = dir,
                Ephemeral = parse.GetValue(ephemeral),
                ListenPort = parse.GetValue(port),
                EnablePortMapping = !parse.GetValue(noPortMapping),
            };
            if (parse.GetValue(listenAddress) is { } bind)
            {
                options.ListenAddress = System.Net.IPAddress.TryParse(bind, out var address)
                    ? address
                    : throw new CliException($"--listen-address: '{bind}' is not an IP address", TunnelMeshCli.Usage);
            }

            await using var node = new MeshNode(options, loggers);
            await node.StartAsync(ct).ConfigureAwait(false);
            var self = node.GetStatus().Self;
            await stdout.WriteLineAsync($"joined as {self.Fqdn ?? self.Name} ({string.Join(", ", self.Addresses)}); local API {LocalApiClient.SocketPath(dir)}; Ctrl-C to leave").ConfigureAwait(false);
            await using var api = await LocalApi.StartAsync(node, dir, ct).ConfigureAwait(false);
            var forwarders = new List<MeshPortForwarder>();
            MeshSocks5Server? proxy = null;
            try
            {
                if (parse.GetValue(socks5) is { } socksEndPoint)
                {
                    proxy = new MeshSocks5Server(node, new MeshSocks5Options { ListenEndPoint = socksEndPoint }, loggers);
                    await proxy.StartAsync(ct).ConfigureAwait(false);
                    await stdout.WriteLineAsync($"SOCKS5 proxy on {proxy.LocalEndPoint}").ConfigureAwait(false);
                }

                foreach (var spec in parse.GetValue(forward)!)
                {
                    var forwarder = new MeshPortForwarder(node, new MeshPortForwardOptions { MeshPort = spec.MeshPort, Target = spec.Target }, loggers);
                    forwarders.Add(forwarder);
                    await forwarder.StartAsync(ct).ConfigureAwait(false);
                    await stdout.WriteLineAsync($"forwarding {forwarder.LocalEndPoint} (mesh) to {spec.TargetText}").ConfigureAwait(false);
                }

                await WaitForCtrlCAsync(ct).ConfigureAwait(false);
            }
            finally
            {
                if (proxy is not null)
                {
                    await proxy.DisposeAsync().ConfigureAwait(false);
                }

                foreach (var forwarder in forwarders)
                {
                    await forwarder.DisposeAsync().ConfigureAwait(false);
                }
            }

            return 0;
        });
        return command;
    }

    private static async Task WaitForCtrlCAsync(CancellationToken ct)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
