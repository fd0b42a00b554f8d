using System.Net;

namespace TunnelMesh.Net;

/// <summary>
/// Who is on the other end of a connection (<see cref="MeshNode.WhoIs(IPAddress)"/>): the peer whose
/// WireGuard key the packets were authenticated with. A packet is accepted from a peer only when its
/// source address lies in that peer's allowed IPs, so the identity cannot be forged by another node
/// choosing a source address.
/// </summary>
/// <param name="PublicKey">The peer's WireGuard public key: its identity.</param>
/// <param name="Name">Its name in the mesh (null for a static peer, configured without a coordinator).</param>
/// <param name="Fqdn">Name and DNS suffix (null for a static peer).</param>
/// <param name="Addresses">Its mesh addresses (for a static peer: its allowed IPs' base addresses).</param>
/// <param name="Tags">The tags of the auth key it joined with (each <c>tag:name</c>); empty for a static peer.</param>
public sealed record MeshPeerIdentity(
    NodePublicKey PublicKey,
    string? Name,
    string? Fqdn,
    IReadOnlyList<IPAddress> Addresses,
    IReadOnlyList<string> Tags)
{
    /// <summary>Whether the peer carries <paramref name="tag"/> (with or without the <c>tag:</c> prefix, any case).</summary>
    public bool HasTag(string tag)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(tag);
        string wanted = tag.StartsWith("tag:", StringComparison.OrdinalIgnoreCase) ? tag : "tag:" + tag;
        return Tags.Any(t => string.Equals(t, wanted, StringComparison.OrdinalIgnoreCase));
    }
}
