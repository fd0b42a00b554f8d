using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Cli;

/// <summary>What <c>status</c> and <c>peers</c> print: a node's status in JSON-friendly form.</summary>
internal sealed record LocalStatus(LocalSelf Self, IReadOnlyList<LocalPeer> Peers, bool ControlConnected, long MapVersion)
{
    public static LocalStatus From(MeshNodeStatus s) => new(
        new LocalSelf(s.Self.Name, s.Self.Fqdn, s.Self.Addresses.Select(a => a.ToString()).ToList(), s.Self.PublicKey.ToString()),
        s.Peers.Select(p => new LocalPeer(p.Name, p.Fqdn, p.Addresses.Select(a => a.ToString()).ToList(), p.PublicKey.ToString(), p.Endpoint?.ToString(), p.Path.ToString().ToLowerInvariant(), p.Online, p.LastHandshake)
        {
            PathKind = PathKindText(p.PathKind),
            Candidates = p.Candidates.Select(c => new LocalCandidate(c.Endpoint.ToString(), KindText(c.Kind), c.LastPing, c.LastPong, c.RoundTrip?.TotalMilliseconds)).ToList(),
            LastProbe = p.LastProbe is { } r ? new LocalProbe(r.At, r.Endpoint.ToString(), r.Answered, r.RoundTrip?.TotalMilliseconds) : null,
        }).ToList(),
        s.ControlConnected,
        s.MapVersion);

    /// <summary>direct-lan, direct-wan, relay, direct (a static peer) or none.</summary>
    internal static string PathKindText(MeshPathKind kind) => kind switch
    {
        MeshPathKind.DirectLan => "direct-lan",
        MeshPathKind.DirectWan => "direct-wan",
        MeshPathKind.Relay => "relay",
        MeshPathKind.Direct => "direct",
        _ => "none",
    };

    /// <summary>local, reflexive, portmap or unknown.</summary>
    internal static string KindText(MeshCandidateKind kind) => kind switch
    {
        MeshCandidateKind.Local => "local",
        MeshCandidateKind.Reflexive => "reflexive",
        MeshCandidateKind.PortMapped => "portmap",
        _ => "unknown",
    };
}

/// <summary>The node itself.</summary>
internal sealed record LocalSelf(string? Name, string? Fqdn, IReadOnlyList<string> Addresses, string PublicKey);

/// <summary>One peer.</summary>
internal sealed record LocalPeer(string? Name, string? Fqdn, IReadOnlyList<string> Addresses, string PublicKey, string? Endpoint, string Path, bool Online, DateTimeOffset? LastHandshake)
{
    /// <summary>direct-lan, direct-wan, relay, direct (a static peer) or none.</summary>
    public string PathKind { get; init; } = "none";

    /// <summary>The peer's direct candidates and what probing found.</summary>
    public IReadOnlyList<LocalCandidate> Candidates { get; init; } = [];

    /// <summary>The last probe round's result.</summary>
    public LocalProbe? LastProbe { get; init; }
}

/// <summary>One direct candidate of a peer.</summary>
internal sealed record LocalCandidate(string Endpoint, string Kind, DateTimeOffset? LastPing, DateTimeOffset? LastPong, double? RttMs);

/// <summary>A probe's result.</summary>
internal sealed record LocalProbe(DateTimeOffset At, string Endpoint, bool Answered, double? RttMs);

/// <summary>One ping's outcome.</summary>
internal sealed record LocalPing(string Name, string Address, string Path, double? RttMs, string? Error);

/// <summary>
/// The local API of a node run by <c>tunnelmesh join</c>: HTTP on a Unix socket in its state
/// directory (mode 0600): GET /status, GET /ping?name=N&amp;count=C and GET /netcheck.
/// </summary>
internal sealed class LocalApi : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _path;

    private LocalApi(WebApplication app, string path)
    {
        _app = app;
        _path = path;
    }

    public static async Task<LocalApi> StartAsync(MeshNode node, string stateDirectory, CancellationToken ct)
    {
        string path = LocalApiClient.SocketPath(stateDirectory);
        File.Delete(path); // a stale socket of an earlier run
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(path));
        var app = builder.Build();
        app.MapGet("/status", () => Results.Json(LocalStatus.From(node.GetStatus()), TunnelMeshCli.Json));
        app.MapGet("/netcheck", async (CancellationToken rct) => Results.Json(await NetCheckCommand.RunAsync(node, rct).ConfigureAwait(false), TunnelMeshCli.Json));
        app.MapGet("/ping", async (string? name, int? count, CancellationToken rct) =>
        {
            if (string.IsNullOrWhiteSpace(name))
            {
                return Results.Problem(detail: "name is required", statusCode: StatusCodes.Status400BadRequest);
            }

            var status = node.GetStatus();
            IPAddress? address = IPAddress.TryParse(name, out var literal) ? literal : null;
            var peer = address is null ? status.FindPeer(name) : status.Peers.FirstOrDefault(p => p.Addresses.Contains(address));
            if (peer is null)
            {
                return Results.Problem(detail: $"no peer named '{name}' in the mesh", statusCode: StatusCodes.Status404NotFound);
            }

            address ??= peer.Addresses.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork) ?? (peer.Addresses.Count > 0 ? peer.Addresses[0] : null);
            if (address is null)
            {
                return Results.Problem(detail: $"peer '{name}' has no address", statusCode: StatusCodes.Status409Conflict);
            }

            var results = new List<LocalPing>();
            for (int i = 0; i < Math.Clamp(count ?? 3, 1, 100); i++)
            {
                try
                {
                    var rtt = await node.PingAsync(address, TimeSpan.FromSeconds(5), rct).ConfigureAwait(false);
                    string path = (node.GetStatus().FindPeer(peer.PublicKey)?.Path ?? peer.Path).ToString().ToLowerInvariant();
                    results.Add(new LocalPing(peer.Name ?? name, address.ToString(), path, rtt.TotalMilliseconds, null));
                }
                catch (TimeoutException e)
                {
                    results.Add(new LocalPing(peer.Name ?? name, address.ToString(), peer.Path.ToString().ToLowerInvariant(), null, TunnelMeshCli.OneLine(e.Message)));
                }
            }

            return Results.Json(results, TunnelMeshCli.Json);
        });
        await app.StartAsync(ct).ConfigureAwait(false);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        return new LocalApi(app, path);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        File.Delete(_path);
    }

    internal static string Ms(double? ms) => ms is { } v ? v.ToString("F2", CultureInfo.InvariantCulture) + " ms" : "-";
}
