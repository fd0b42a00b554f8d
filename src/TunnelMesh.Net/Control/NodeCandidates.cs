using System.Net;
using System.Net.Sockets;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Control;

/// <summary>
/// This node's own direct endpoints and their kinds: its interface addresses (local, read through
/// <c>localEndpoints</c>) and the extra ones by kind (reflexive from STUN, port-mapped from a router).
/// The coordinator gets them as plain <c>ip:port</c> strings (<see cref="Endpoints"/>); peers get
/// them with their kinds in a call-me-maybe (<see cref="Current"/>).
/// </summary>
internal sealed class NodeCandidates(Func<IReadOnlyList<string>> localEndpoints, TimeProvider time)
{
    private static readonly TimeSpan CacheTime = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private SortedDictionary<CandidateKind, IReadOnlyList<string>> _extraByKind = [];
    private IReadOnlyList<string> _extra = [];
    private Cache? _cache;

    /// <summary>Replaces the extra endpoints of one <paramref name="kind"/>.</summary>
    public void SetExtra(IReadOnlyList<string> endpoints, CandidateKind kind)
    {
        lock (_gate)
        {
            var next = new SortedDictionary<CandidateKind, IReadOnlyList<string>>(_extraByKind) { [kind] = endpoints };
            // A port mapping first: the cap on published endpoints must not cut it (one endpoint, and
            // the one most likely to work behind a hard NAT); then by kind.
            var all = new List<string>(next.GetValueOrDefault(CandidateKind.PortMapped, []));
            foreach (var (k, list) in next)
            {
                if (k != CandidateKind.PortMapped)
                {
                    all.AddRange(list);
                }
            }

            _extraByKind = next;
            Volatile.Write(ref _extra, all);
            Volatile.Write(ref _cache, null);
        }
    }

    /// <summary>Forgets the cached candidates (the interfaces changed).</summary>
    public void Invalidate() => Volatile.Write(ref _cache, null);

    /// <summary>What the node publishes: its interface endpoints, then the extra ones, without repeats, at most 16.</summary>
    public IReadOnlyList<string> Endpoints()
    {
        var local = localEndpoints();
        var extra = Volatile.Read(ref _extra);
        if (extra.Count == 0)
        {
            return local;
        }

        var all = new List<string>(local);
        foreach (string e in extra)
        {
            if (!all.Contains(e, StringComparer.Ordinal) && all.Count < PeerEndpointChooser.MaxPublished)
            {
                all.Add(e);
            }
        }

        return all;
    }

    /// <summary>
    /// The published endpoints with their kinds. A public interface address that a STUN server also
    /// saw is reflexive (no NAT in front: it is the node's internet address, not a LAN one); a
    /// loopback or private one stays local (the STUN server is on the same network). Asked on the
    /// receive path (each completed handshake), so the interface list is read at most once a second.
    /// </summary>
    public IReadOnlyList<PathCandidate> Current()
    {
        var cached = Volatile.Read(ref _cache);
        long now = time.GetTimestamp();
        if (cached is not null && time.GetElapsedTime(cached.At, now) < CacheTime)
        {
            return cached.Candidates;
        }

        var fresh = Compute();
        Volatile.Write(ref _cache, new Cache(now, fresh));
        return fresh;
    }

    private List<PathCandidate> Compute()
    {
        SortedDictionary<CandidateKind, IReadOnlyList<string>> extra;
        lock (_gate)
        {
            extra = _extraByKind;
        }

        var local = localEndpoints();
        var result = new List<PathCandidate>();
        foreach (string text in Endpoints())
        {
            if (!IPEndPoint.TryParse(text, out var ip))
            {
                continue;
            }

            bool isLocal = local.Contains(text, StringComparer.Ordinal);
            var kind = CandidateKind.Local;
            if (!isLocal || !IsPrivate(ip.Address))
            {
                foreach (var (k, list) in extra)
                {
                    if (list.Contains(text, StringComparer.Ordinal))
                    {
                        kind = k;
                        break;
                    }
                }
            }

            result.Add(new PathCandidate(Transport.Endpoint.FromIPEndPoint(ip), kind));
        }

        return result;
    }

    /// <summary>Loopback, RFC 1918, shared (RFC 6598), link-local, unique local (fc00::/7).</summary>
    internal static bool IsPrivate(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IPAddress.IsLoopback(address) || address.IsIPv6LinkLocal || address.IsIPv6UniqueLocal)
        {
            return true;
        }

        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            return false;
        }

        Span<byte> b = stackalloc byte[4];
        address.TryWriteBytes(b, out _);
        return b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) || (b[0] == 192 && b[1] == 168)
            || (b[0] == 100 && (b[1] & 0xC0) == 64) || (b[0] == 169 && b[1] == 254);
    }

    private sealed record Cache(long At, IReadOnlyList<PathCandidate> Candidates);
}
