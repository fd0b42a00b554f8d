using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace TunnelMesh.Net.Cli;

/// <summary>What <c>netcheck</c> prints: <see cref="MeshNetworkReport"/> in JSON-friendly form.</summary>
internal sealed record LocalNetCheck(
    IReadOnlyList<LocalStunProbe> Stun,
    string? Ipv4,
    string? Ipv6,
    string Nat,
    string PortMapping,
    string? PortMappedEndpoint,
    double? RelayLatencyMs,
    string? RelayError)
{
    public static LocalNetCheck From(MeshNetworkReport r) => new(
        r.Stun.Select(p => new LocalStunProbe(p.Server, p.Destination?.ToString(), p.Reflexive?.ToString(), p.RoundTrip?.TotalMilliseconds, p.Error)).ToList(),
        r.Ipv4Reflexive?.ToString(),
        r.Ipv6Reflexive?.ToString(),
        r.NatMapping switch
        {
            MeshNatMapping.EndpointIndependent => "easy",
            MeshNatMapping.EndpointDependent => "hard",
            _ => "unknown",
        },
        r.PortMapping switch
        {
            MeshPortMappingProtocol.Pcp => "pcp",
            MeshPortMappingProtocol.NatPmp => "nat-pmp",
            MeshPortMappingProtocol.Upnp => "upnp",
            _ => "none",
        },
        r.PortMappedEndpoint?.ToString(),
        r.RelayLatency?.TotalMilliseconds,
        r.RelayError);
}

/// <summary>One STUN destination's answer.</summary>
internal sealed record LocalStunProbe(string Server, string? Destination, string? Reflexive, double? RttMs, string? Error);

/// <summary><c>tunnelmesh netcheck</c>: the network report of the node that <c>join</c> runs (<see cref="MeshNode.CheckNetworkAsync"/>).</summary>
internal static class NetCheckCommand
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static Command Create(TextWriter stdout)
    {
        var stateDir = TunnelMeshCli.StateDirOption();
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command(
            "netcheck",
            "Check the node's network: its reflexive IPv4 and IPv6 addresses from every STUN server the coordinator advertises, whether its NAT is easy (endpoint-independent) or hard, whether the gateway offers port mapping (PCP, NAT-PMP, UPnP IGD), and the relay's latency.")
        {
            stateDir,
            json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var answer = await LocalApiClient.GetAsync(parse.GetValue(stateDir)!, "netcheck", Timeout, ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(answer, TunnelMeshCli.Json)).ConfigureAwait(false);
                return 0;
            }

            var r = answer.Deserialize<LocalNetCheck>(TunnelMeshCli.Json) ?? throw new CliException("the node answered without a report");
            await stdout.WriteLineAsync("Report:").ConfigureAwait(false);
            await stdout.WriteLineAsync($"  IPv4:         {r.Ipv4 ?? "no"}").ConfigureAwait(false);
            await stdout.WriteLineAsync($"  IPv6:         {r.Ipv6 ?? "no"}").ConfigureAwait(false);
            string nat = r.Nat switch
            {
                "easy" => "easy (endpoint-independent mapping)",
                "hard" => "hard (endpoint-dependent mapping: peers behind hard NATs stay on the relay)",
                _ => "unknown (needs two STUN destinations: serve --stun-port 3478 --stun-port 3479)",
            };
            await stdout.WriteLineAsync($"  NAT:          {nat}").ConfigureAwait(false);
            await stdout.WriteLineAsync($"  Port mapping: {(r.PortMapping == "none" ? "none" : r.PortMappedEndpoint is { } mapped ? $"{r.PortMapping} ({mapped})" : r.PortMapping)}").ConfigureAwait(false);
            await stdout.WriteLineAsync($"  Relay:        {(r.RelayLatencyMs is { } ms ? LocalApi.Ms(ms) : $"unreachable ({r.RelayError})")}").ConfigureAwait(false);
            await stdout.WriteLineAsync("  STUN:").ConfigureAwait(false);
            if (r.Stun.Count == 0)
            {
                await stdout.WriteLineAsync("    (the coordinator advertises no STUN server)").ConfigureAwait(false);
            }

            foreach (var p in r.Stun)
            {
                string where = p.Destination is null || p.Destination == p.Server ? p.Server : $"{p.Server} ({p.Destination})";
                await stdout.WriteLineAsync(p.Reflexive is { } reflexive
                    ? $"    {where}: {reflexive} in {LocalApi.Ms(p.RttMs)}"
                    : $"    {where}: no answer ({p.Error})").ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    /// <summary>The local API's handler: runs the check on the node.</summary>
    internal static async Task<LocalNetCheck> RunAsync(MeshNode node, CancellationToken ct) =>
        LocalNetCheck.From(await node.CheckNetworkAsync(ct).ConfigureAwait(false));
}
