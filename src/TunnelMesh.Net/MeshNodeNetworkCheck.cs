using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Transport.PortMapping;

namespace TunnelMesh.Net;

/// <summary>
/// The work behind <see cref="MeshNode.CheckNetworkAsync"/>: STUN from the node's WireGuard socket
/// to every destination the coordinator advertises (every address of every server, at once), the
/// NAT's mapping behaviour from those answers, the port mapping held (or a one-off probe of the
/// gateway), and an HTTP round trip to the coordinator that serves the relay.
/// </summary>
internal static class MeshNodeNetworkCheck
{
    /// <summary>Per STUN request: 3 attempts, 500 ms apart.</summary>
    private static readonly TimeSpan StunTimeout = TimeSpan.FromMilliseconds(500);

    /// <summary>Addresses asked per STUN server name at most.</summary>
    private const int MaxAddressesPerServer = 4;

    private static readonly TimeSpan HttpTimeout = TimeSpan.FromSeconds(5);

    public static async Task<MeshNetworkReport> RunAsync(
        IReadOnlyList<string> stunServers,
        StunClient stun,
        PortMappingLease? lease,
        Func<CancellationToken, Task<MeshPortMappingProtocol>> probePortMapping,
        Uri? relayProbe,
        CancellationToken cancellationToken)
    {
        var stunTask = ProbeStunAsync(stunServers, stun, cancellationToken);
        var mappingTask = lease is not null ? Task.FromResult(lease.Protocol) : probePortMapping(cancellationToken);
        var relayTask = MeasureHttpAsync(relayProbe, cancellationToken);
        var probes = await stunTask.ConfigureAwait(false);
        var protocol = await mappingTask.ConfigureAwait(false);
        var (latency, relayError) = await relayTask.ConfigureAwait(false);

        return new MeshNetworkReport(
            probes,
            probes.FirstOrDefault(p => p.Reflexive?.AddressFamily == AddressFamily.InterNetwork)?.Reflexive,
            probes.FirstOrDefault(p => p.Reflexive?.AddressFamily == AddressFamily.InterNetworkV6)?.Reflexive,
            Classify(probes),
            protocol,
            lease?.External,
            latency,
            relayError);
    }

    /// <summary>
    /// Endpoint-dependent when, in some address family, two destinations saw different reflexive
    /// endpoints; endpoint-independent when some family had two or more answers and all agreed;
    /// otherwise unknown.
    /// </summary>
    internal static MeshNatMapping Classify(IReadOnlyList<MeshStunProbe> probes)
    {
        var result = MeshNatMapping.Unknown;
        foreach (var family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
        {
            var answered = probes.Where(p => p.Reflexive?.AddressFamily == family && p.Destination is not null)
                .DistinctBy(p => p.Destination)
                .ToList();
            if (answered.Count < 2)
            {
                continue;
            }

            if (answered.Any(p => !p.Reflexive!.Equals(answered[0].Reflexive)))
            {
                return MeshNatMapping.EndpointDependent;
            }

            result = MeshNatMapping.EndpointIndependent;
        }

        return result;
    }

    private static async Task<IReadOnlyList<MeshStunProbe>> ProbeStunAsync(IReadOnlyList<string> servers, StunClient stun, CancellationToken cancellationToken)
    {
        var tasks = new List<Task<MeshStunProbe[]>>();
        foreach (string server in servers)
        {
            tasks.Add(ProbeServerAsync(server, stun, cancellationToken));
        }

        var results = await Task.WhenAll(tasks).ConfigureAwait(false);
        return results.SelectMany(r => r).ToList();
    }

    private static async Task<MeshStunProbe[]> ProbeServerAsync(string server, StunClient stun, CancellationToken cancellationToken)
    {
        IPEndPoint[] destinations;
        try
        {
            destinations = WgQuickConfig.ParseEndpoint(server) switch
            {
                IPEndPoint ip => [ip],
                DnsEndPoint dns => (await System.Net.Dns.GetHostAddressesAsync(dns.Host, cancellationToken).ConfigureAwait(false))
                    .Take(MaxAddressesPerServer)
                    .Select(a => new IPEndPoint(a, dns.Port))
                    .ToArray(),
                _ => throw new FormatException($"'{server}' is not host:port"),
            };
        }
        catch (Exception ex) when (ex is SocketException or FormatException or ArgumentException)
        {
            return [new MeshStunProbe(server, null, null, null, OneLine(ex.Message))];
        }

        if (destinations.Length == 0)
        {
            return [new MeshStunProbe(server, null, null, null, "the name has no address")];
        }

        return await Task.WhenAll(destinations.Select(d => QueryAsync(server, d, stun, cancellationToken))).ConfigureAwait(false);
    }

    private static async Task<MeshStunProbe> QueryAsync(string server, IPEndPoint destination, StunClient stun, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            var reflexive = await stun.QueryAsync(destination, StunTimeout, 3, cancellationToken).ConfigureAwait(false);
            // The round trip of the request that was answered is at most the time since the last send.
            var elapsed = Stopwatch.GetElapsedTime(start);
            while (elapsed > StunTimeout)
            {
                elapsed -= StunTimeout;
            }

            return new MeshStunProbe(server, destination, reflexive, elapsed, null);
        }
        catch (Exception ex) when (ex is TimeoutException or SocketException)
        {
            return new MeshStunProbe(server, destination, null, null, OneLine(ex.Message));
        }
    }

    /// <summary>The best of three HTTP round trips to <paramref name="target"/> (after one that opens the connection); any status counts as an answer.</summary>
    private static async Task<(TimeSpan? Latency, string? Error)> MeasureHttpAsync(Uri? target, CancellationToken cancellationToken)
    {
        if (target is null)
        {
            return (null, "no relay (the node has no coordinator or relay URL)");
        }

        using var http = new HttpClient { Timeout = HttpTimeout };
        try
        {
            TimeSpan? best = null;
            for (int i = 0; i < 4; i++)
            {
                long start = Stopwatch.GetTimestamp();
                using var response = await http.GetAsync(target, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
                var elapsed = Stopwatch.GetElapsedTime(start);
                if (i > 0 && (best is null || elapsed < best))
                {
                    best = elapsed;
                }
            }

            return (best, null);
        }
        catch (Exception ex) when (ex is HttpRequestException || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return (null, OneLine(ex.Message));
        }
    }

    /// <summary>The HTTP URL whose round trip stands for the relay's latency: the coordinator's health endpoint, or the relay URL itself.</summary>
    internal static Uri? RelayProbeTarget(Uri? controlUrl, Uri? relayUrl)
    {
        if (controlUrl is not null)
        {
            return new Uri(controlUrl.AbsoluteUri.TrimEnd('/') + "/api/v1/health");
        }

        if (relayUrl is null)
        {
            return null;
        }

        var builder = new UriBuilder(relayUrl)
        {
            Scheme = relayUrl.Scheme switch { "wss" => Uri.UriSchemeHttps, "ws" => Uri.UriSchemeHttp, _ => relayUrl.Scheme },
        };
        return builder.Uri;
    }

    private static string OneLine(string message)
    {
        int nl = message.IndexOfAny(['\r', '\n']);
        return (nl < 0 ? message : message[..nl]).Trim();
    }
}
