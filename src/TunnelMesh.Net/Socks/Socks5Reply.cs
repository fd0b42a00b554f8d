namespace TunnelMesh.Net.Socks;

/// <summary>The REP field of a SOCKS5 reply (RFC 1928, section 6).</summary>
public enum Socks5Reply : byte
{
    /// <summary>0x00: the connection is open; relaying starts.</summary>
    Succeeded = 0x00,

    /// <summary>0x01: general SOCKS server failure (an error no other code describes).</summary>
    GeneralFailure = 0x01,

    /// <summary>0x02: connection not allowed by ruleset.</summary>
    ConnectionNotAllowed = 0x02,

    /// <summary>0x03: network unreachable.</summary>
    NetworkUnreachable = 0x03,

    /// <summary>0x04: host unreachable (also: unknown mesh name, no peer routes the address, the connect timed out).</summary>
    HostUnreachable = 0x04,

    /// <summary>0x05: connection refused (the peer answered with RST).</summary>
    ConnectionRefused = 0x05,

    /// <summary>0x06: TTL expired (never sent by this server).</summary>
    TtlExpired = 0x06,

    /// <summary>0x07: command not supported (BIND and UDP ASSOCIATE).</summary>
    CommandNotSupported = 0x07,

    /// <summary>0x08: address type not supported (an IPv6 address that is not IPv4-mapped; unknown ATYP).</summary>
    AddressTypeNotSupported = 0x08,
}
