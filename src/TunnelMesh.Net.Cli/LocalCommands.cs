using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace TunnelMesh.Net.Cli;

/// <summary><c>status</c>, <c>peers</c> and <c>ping</c>: ask the node that <c>join</c> runs.</summary>
internal static class LocalCommands
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static Command Status(TextWriter stdout)
    {
        var stateDir = TunnelMeshCli.StateDirOption();
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("status", "Show this node: name, addresses, key, coordinator connection, peer count.") { stateDir, json };
        command.SetAction(async (parse, ct) =>
        {
            var s = await GetStatusAsync(parse.GetValue(stateDir)!, ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(s, TunnelMeshCli.Json)).ConfigureAwait(false);
                return 0;
            }

            await stdout.WriteLineAsync($"name:        {s.Self.Fqdn ?? s.Self.Name ?? "-"}").ConfigureAwait(false);
            await stdout.WriteLineAsync($"addresses:   {string.Join(", ", s.Self.Addresses)}").ConfigureAwait(false);
            await stdout.WriteLineAsync($"public key:  {s.Self.PublicKey}").ConfigureAwait(false);
            await stdout.WriteLineAsync($"coordinator: {(s.ControlConnected ? "connected" : "disconnected")} (map version {s.MapVersion.ToString(CultureInfo.InvariantCulture)})").ConfigureAwait(false);
            await stdout.WriteLineAsync($"peers:       {s.Peers.Count.ToString(CultureInfo.InvariantCulture)} ({s.Peers.Count(p => p.Online).ToString(CultureInfo.InvariantCulture)} online)").ConfigureAwait(false);
            foreach (var p in s.Peers)
            {
                await stdout.WriteLineAsync($"  {p.Fqdn ?? p.Name ?? p.PublicKey}: {p.PathKind} {p.Endpoint ?? "-"}; last probe {ProbeText(p.LastProbe)}").ConfigureAwait(false);
                await WriteCandidatesAsync(stdout, p).ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    public static Command Peers(TextWriter stdout)
    {
        var stateDir = TunnelMeshCli.StateDirOption();
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("peers", "List the peers: name, addresses, path (direct-lan, direct-wan or relay), endpoint, last handshake, last probe and candidates.") { stateDir, json };
        command.SetAction(async (parse, ct) =>
        {
            var s = await GetStatusAsync(parse.GetValue(stateDir)!, ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(s.Peers, TunnelMeshCli.Json)).ConfigureAwait(false);
                return 0;
            }

            await stdout.WriteLineAsync($"{"NAME",-28} {"ADDRESSES",-40} {"PATH",-7} {"KIND",-10} {"ONLINE",-6} {"ENDPOINT",-24} {"LAST HANDSHAKE",-20} LAST PROBE").ConfigureAwait(false);
            foreach (var p in s.Peers)
            {
                await stdout.WriteLineAsync($"{p.Fqdn ?? p.Name ?? p.PublicKey,-28} {string.Join(", ", p.Addresses),-40} {p.Path,-7} {p.PathKind,-10} {(p.Online ? "yes" : "no"),-6} {p.Endpoint ?? "-",-24} {TunnelMeshCli.Format(p.LastHandshake),-20} {ProbeText(p.LastProbe)}").ConfigureAwait(false);
                await WriteCandidatesAsync(stdout, p).ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    // "203.0.113.5:40001 answered in 1.20 ms at 2026-…" or "… no answer (sent 2026-…)"; "-" before any probe.
    private static string ProbeText(LocalProbe? probe) => probe is null ? "-"
        : probe.Answered ? $"{probe.Endpoint} answered in {LocalApi.Ms(probe.RttMs)} at {TunnelMeshCli.Format(probe.At)}"
        : $"{probe.Endpoint} no answer (sent {TunnelMeshCli.Format(probe.At)})";

    // One indented line of candidates under a peer: "candidates: 192.0.2.2:51820 local 0.40 ms, 203.0.113.5:40001 reflexive no answer".
    private static async Task WriteCandidatesAsync(TextWriter stdout, LocalPeer p)
    {
        if (p.Candidates.Count == 0)
        {
            return;
        }

        var parts = p.Candidates.Select(c => $"{c.Endpoint} {c.Kind} {(c.LastPong is not null ? LocalApi.Ms(c.RttMs) : c.LastPing is not null ? "no answer" : "not tried")}");
        await stdout.WriteLineAsync($"    candidates: {string.Join(", ", parts)}").ConfigureAwait(false);
    }

    public static Command Ping(TextWriter stdout)
    {
        var name = new Argument<string>("name") { Description = "A peer's name (name or name.suffix) or mesh address." };
        var count = new Option<int>("--count", "-c") { Description = "How many pings (1-100).", DefaultValueFactory = _ => 3 };
        var stateDir = TunnelMeshCli.StateDirOption();
        var command = new Command("ping", "Ping a peer through the mesh (ICMP echo inside WireGuard) and show the path taken.") { name, count, stateDir };
        command.SetAction(async (parse, ct) =>
        {
            string target = parse.GetValue(name)!;
            int n = parse.GetValue(count);
            if (n is < 1 or > 100)
            {
                throw new CliException("--count: must be 1 to 100", TunnelMeshCli.Usage);
            }

            var answer = await LocalApiClient.GetAsync(parse.GetValue(stateDir)!, $"ping?name={Uri.EscapeDataString(target)}&count={n.ToString(CultureInfo.InvariantCulture)}", Timeout + TimeSpan.FromSeconds(5 * n), ct).ConfigureAwait(false);
            var pings = answer.Deserialize<List<LocalPing>>(TunnelMeshCli.Json) ?? [];
            int ok = 0;
            foreach (var p in pings)
            {
                if (p.RttMs is not null)
                {
                    ok++;
                    await stdout.WriteLineAsync($"pong from {p.Name} ({p.Address}) via {p.Path} in {LocalApi.Ms(p.RttMs)}").ConfigureAwait(false);
                }
                else
                {
                    await stdout.WriteLineAsync($"no answer from {p.Name} ({p.Address}): {p.Error}").ConfigureAwait(false);
                }
            }

            if (ok == 0)
            {
                throw new CliException($"{target} did not answer any of {pings.Count} pings");
            }

            return 0;
        });
        return command;
    }

    private static async Task<LocalStatus> GetStatusAsync(string stateDirectory, CancellationToken ct)
    {
        var json = await LocalApiClient.GetAsync(stateDirectory, "status", Timeout, ct).ConfigureAwait(false);
        return json.Deserialize<LocalStatus>(TunnelMeshCli.Json) ?? throw new CliException("the node answered without a status");
    }
}
