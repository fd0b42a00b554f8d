namespace TunnelMesh.Net.Wire;

/// <summary>IP protocol numbers (IANA "Assigned Internet Protocol Numbers") the stack knows.</summary>
internal static class IpProtocol
{
    /// <summary>ICMP for IPv4 (RFC 792).</summary>
    public const byte Icmp = 1;

    /// <summary>TCP (RFC 9293).</summary>
    public const byte Tcp = 6;

    /// <summary>UDP (RFC 768).</summary>
    public const byte Udp = 17;

    /// <summary>ICMP for IPv6 (RFC 4443).</summary>
    public const byte IcmpV6 = 58;
}
