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
    DateTimeOffset? LastHandshake);

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
