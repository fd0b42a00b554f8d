using System.Net;

namespace TunnelMesh.Net;

/// <summary>What a node knows of itself and its peers now (<see cref="MeshNode.GetStatus"/>).</summary>
/// <param name="Self">The node itself.</param>
/// <param name="Peers">Every peer on the node's WireGuard device (from the peer map and the static options), by name.</param>
/// <param name="ControlConnected">Whether the node holds the coordinator's peer map stream now (false in static mode).</param>
/// <param name="MapVersion">The version of the last peer map message applied (0 in static mode or before any).</param>
public sealed record MeshNodeStatus(MeshSelfStatus Self, IReadOnlyList<MeshPeerStatus> Peers, bool ControlConnected, long MapVersion)
{
    /// <summary>The peer with this name (the label or the fully qualified name, any case), or null.</summary>
    public MeshPeerStatus? FindPeer(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string n = name.TrimEnd('.');
        return Peers.FirstOrDefault(p => string.Equals(p.Name, n, StringComparison.OrdinalIgnoreCase) || string.Equals(p.Fqdn, n, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The peer with this public key, or null.</summary>
    public MeshPeerStatus? FindPeer(NodePublicKey publicKey) => Peers.FirstOrDefault(p => p.PublicKey == publicKey);
}

/// <summary>The node itself.</summary>
/// <param name="Name">Its name in the mesh (null in static mode).</param>
/// <param name="Fqdn">Name and DNS suffix (null in static mode).</param>
/// <param name="Addresses">Its mesh addresses, IPv4 first.</param>
/// <param name="PublicKey">Its WireGuard public key.</param>
public sealed record MeshSelfStatus(string? Name, string? Fqdn, IReadOnlyList<IPAddress> Addresses, NodePublicKey PublicKey);

/// <summary>One peer.</summary>
/// <param name="Name">Its name in the mesh (null for a static peer).</param>
/// <param name="Fqdn">Name and DNS suffix (null for a static peer).</param>
/// <param name="Addresses">Its mesh addresses (for a static peer: its allowed IPs' base addresses).</param>
/// <param name="PublicKey">Its WireGuard public key.</param>
/// <param name="Endpoint">Its UDP endpoint: where its packets go on the direct path, or the direct endpoint being probed while on the relay; null when none is known.</param>
/// <param name="Path">How packets reach it now.</param>
/// <param name="Online">Whether the coordinator sees it connected (true for a static peer).</param>
/// <param name="LastHandshake">When the last WireGuard handshake with it completed, if any did.</param>
public sealed record MeshPeerStatus(
    string? Name,
    string? Fqdn,
    IReadOnlyList<IPAddress> Addresses,
    NodePublicKey PublicKey,
    IPEndPoint? Endpoint,
    MeshPeerPath Path,
    bool Online,
    DateTimeOffset? LastHandshake)
{
    /// <summary>
    /// The path in more detail: <see cref="MeshPathKind.DirectLan"/> when packets go to one of the peer's
    /// interface addresses, <see cref="MeshPathKind.DirectWan"/> when they go to another direct endpoint
    /// (its NAT's mapping, a port mapping, an address learned by roaming), <see cref="MeshPathKind.Relay"/>
    /// through the coordinator. The endpoint in use is <see cref="Endpoint"/> when direct.
    /// </summary>
    public MeshPathKind PathKind { get; init; }

    /// <summary>The peer's direct candidates the path choice knows and probes, with their kinds and what probing found (empty for a static peer).</summary>
    public IReadOnlyList<MeshPathCandidate> Candidates { get; init; } = [];

    /// <summary>The last probe round's result: its first answer, or its last ping when nothing answered; null before any probe (and for a static peer).</summary>
    public MeshProbeResult? LastProbe { get; init; }
}

/// <summary>How a node's packets reach a peer, with direct paths told apart by where the endpoint comes from.</summary>
public enum MeshPathKind
{
    /// <summary>No way known yet (no endpoint).</summary>
    None,

    /// <summary>Through the coordinator's relay.</summary>
    Relay,

    /// <summary>Direct to one of the peer's interface addresses: the same LAN (or a routed private network).</summary>
    DirectLan,

    /// <summary>Direct to another endpoint of the peer: over the internet through NATs.</summary>
    DirectWan,

    /// <summary>Direct to a configured endpoint, of a kind not known (a static peer: no path choice).</summary>
    Direct,
}

/// <summary>Where a peer's direct candidate comes from (as the peer announced it; unknown when only the coordinator published it).</summary>
public enum MeshCandidateKind
{
    /// <summary>Not said.</summary>
    Unknown,

    /// <summary>An address of one of the peer's interfaces.</summary>
    Local,

    /// <summary>The peer's address as a STUN server saw it (its NAT's public mapping).</summary>
    Reflexive,

    /// <summary>A mapping the peer asked its router for (NAT-PMP, PCP, UPnP IGD).</summary>
    PortMapped,
}

/// <summary>One direct candidate of a peer.</summary>
/// <param name="Endpoint">The UDP endpoint.</param>
/// <param name="Kind">Where it comes from.</param>
/// <param name="LastPing">When this node last pinged it.</param>
/// <param name="LastPong">When a pong last came back from it.</param>
/// <param name="RoundTrip">The round-trip time of that pong.</param>
public sealed record MeshPathCandidate(IPEndPoint Endpoint, MeshCandidateKind Kind, DateTimeOffset? LastPing, DateTimeOffset? LastPong, TimeSpan? RoundTrip);

/// <summary>The result of a path probe (a ping inside the WireGuard session to a direct endpoint).</summary>
/// <param name="At">When the ping went.</param>
/// <param name="Endpoint">Where it went (where the answer came from, when answered).</param>
/// <param name="Answered">Whether a pong answered it.</param>
/// <param name="RoundTrip">The round-trip time when answered.</param>
public sealed record MeshProbeResult(DateTimeOffset At, IPEndPoint Endpoint, bool Answered, TimeSpan? RoundTrip);

/// <summary>How a node's packets reach a peer.</summary>
public enum MeshPeerPath
{
    /// <summary>No way known yet (no endpoint).</summary>
    None,

    /// <summary>Straight to the peer's UDP endpoint.</summary>
    Direct,

    /// <summary>Through the coordinator's relay.</summary>
    Relay,
}

/// <summary>The data of <see cref="MeshNode.StatusChanged"/>.</summary>
public sealed class MeshStatusChangedEventArgs : EventArgs
{
    /// <summary>Creates the event data.</summary>
    public MeshStatusChangedEventArgs(MeshNodeStatus status) => Status = status;

    /// <summary>The node's status just after the change.</summary>
    public MeshNodeStatus Status { get; }
}
