using System.Net;

namespace TunnelMesh.Net;

/// <summary>A protocol a node's gateway offers for mapping a port (see <see cref="MeshNodeOptions.EnablePortMapping"/>).</summary>
public enum MeshPortMappingProtocol
{
    /// <summary>No port mapping (none offered, none tried, or it failed).</summary>
    None,

    /// <summary>NAT Port Mapping Protocol (RFC 6886).</summary>
    NatPmp,

    /// <summary>Port Control Protocol (RFC 6887).</summary>
    Pcp,

    /// <summary>UPnP Internet Gateway Device (WANIPConnection AddPortMapping).</summary>
    Upnp,
}

/// <summary>How the NAT in front of a node maps its UDP socket, as seen from two STUN destinations.</summary>
public enum MeshNatMapping
{
    /// <summary>Not known: fewer than two STUN destinations of one address family answered.</summary>
    Unknown,

    /// <summary>
    /// Endpoint-independent ("easy" NAT, RFC 4787): every destination saw the same reflexive address
    /// and port, so a peer can usually reach the node directly at its published STUN endpoint.
    /// </summary>
    EndpointIndependent,

    /// <summary>
    /// Endpoint-dependent ("hard" NAT, e.g. a symmetric NAT or nftables <c>masquerade random</c>): the
    /// destinations saw different ports (or addresses), so the STUN endpoint is of no use to peers;
    /// direct paths need a port mapping or the peer's side to be easy, else traffic stays on the relay.
    /// </summary>
    EndpointDependent,
}

/// <summary>One STUN destination asked by <see cref="MeshNode.CheckNetworkAsync"/>.</summary>
/// <param name="Server">The STUN server as the coordinator advertises it (<c>host:port</c>).</param>
/// <param name="Destination">The address asked (one per resolved address); null when the name did not resolve.</param>
/// <param name="Reflexive">The node's WireGuard socket as that destination saw it; null when it did not answer.</param>
/// <param name="RoundTrip">The time from the request that was answered to its answer.</param>
/// <param name="Error">Why there is no answer (one line), or null.</param>
public sealed record MeshStunProbe(string Server, IPEndPoint? Destination, IPEndPoint? Reflexive, TimeSpan? RoundTrip, string? Error);

/// <summary>
/// What <see cref="MeshNode.CheckNetworkAsync"/> found out about the network between the node and
/// the internet, in the spirit of <c>tailscale netcheck</c>.
/// </summary>
/// <param name="Stun">Each STUN destination asked, in the order the coordinator advertises them.</param>
/// <param name="Ipv4Reflexive">The node's IPv4 reflexive endpoint (the first IPv4 answer), or null.</param>
/// <param name="Ipv6Reflexive">The node's IPv6 reflexive endpoint (the first IPv6 answer), or null.</param>
/// <param name="NatMapping">Whether the NAT maps endpoint-independently (easy) or not (hard).</param>
/// <param name="PortMapping">The port-mapping protocol the gateway offers (the node's own mapping's, when it holds one).</param>
/// <param name="PortMappedEndpoint">The external endpoint of the node's port mapping, when it holds one.</param>
/// <param name="RelayLatency">The round trip of an HTTP request to the coordinator that serves the relay; null when it failed or there is none.</param>
/// <param name="RelayError">Why there is no <paramref name="RelayLatency"/>, or null.</param>
public sealed record MeshNetworkReport(
    IReadOnlyList<MeshStunProbe> Stun,
    IPEndPoint? Ipv4Reflexive,
    IPEndPoint? Ipv6Reflexive,
    MeshNatMapping NatMapping,
    MeshPortMappingProtocol PortMapping,
    IPEndPoint? PortMappedEndpoint,
    TimeSpan? RelayLatency,
    string? RelayError);
