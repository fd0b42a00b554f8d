using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// Where a direct endpoint of a node comes from. The values are wire values of
/// <see cref="PathControl.CallMeMaybe"/> (one byte); an unknown value from a newer peer reads as
/// <see cref="Unknown"/>, so kinds can be added without breaking older nodes.
/// </summary>
internal enum CandidateKind : byte
{
    /// <summary>Not said (published by the coordinator only, or by a node that does not tell kinds).</summary>
    Unknown = 0,

    /// <summary>An address of one of the node's own interfaces: reachable as is on the same LAN.</summary>
    Local = 1,

    /// <summary>The node's address as a STUN server saw it (its NAT's public mapping).</summary>
    Reflexive = 2,

    /// <summary>A mapping the node asked its router for (NAT-PMP, PCP, UPnP IGD).</summary>
    PortMapped = 3,
}

/// <summary>One direct endpoint of a node and where it comes from.</summary>
/// <param name="Endpoint">The UDP endpoint.</param>
/// <param name="Kind">Its kind.</param>
internal readonly record struct PathCandidate(Endpoint Endpoint, CandidateKind Kind)
{
    /// <summary>The kind from a wire byte; unknown values read as <see cref="CandidateKind.Unknown"/>.</summary>
    public static CandidateKind KindFromWire(byte value) => value <= (byte)CandidateKind.PortMapped ? (CandidateKind)value : CandidateKind.Unknown;

    /// <summary>How much a path over a candidate of this kind is preferred: the same LAN over the internet.</summary>
    public static int Rank(CandidateKind kind) => kind == CandidateKind.Local ? 2 : 1;
}
