namespace TunnelMesh.Net.Socks;

/// <summary>Constants of SOCKS5 (RFC 1928) and its username/password sub-negotiation (RFC 1929).</summary>
internal static class Socks5Protocol
{
    /// <summary>VER of greetings, requests and replies.</summary>
    public const byte Version = 0x05;

    /// <summary>VER of the RFC 1929 sub-negotiation.</summary>
    public const byte AuthVersion = 0x01;

    /// <summary>METHOD: no authentication required.</summary>
    public const byte MethodNoAuth = 0x00;

    /// <summary>METHOD: username/password (RFC 1929).</summary>
    public const byte MethodUsernamePassword = 0x02;

    /// <summary>METHOD: no acceptable methods.</summary>
    public const byte MethodNoAcceptable = 0xFF;

    /// <summary>RFC 1929 STATUS: success (any other value is failure).</summary>
    public const byte AuthSuccess = 0x00;

    /// <summary>RFC 1929 STATUS sent on failure.</summary>
    public const byte AuthFailure = 0x01;

    public const byte CommandConnect = 0x01;
    public const byte CommandBind = 0x02;
    public const byte CommandUdpAssociate = 0x03;

    public const byte AddressIPv4 = 0x01;
    public const byte AddressDomainName = 0x03;
    public const byte AddressIPv6 = 0x04;

    /// <summary>Length of a reply with an IPv4 BND.ADDR: VER REP RSV ATYP, 4 address bytes, 2 port bytes.</summary>
    public const int IPv4ReplyLength = 10;

    /// <summary>
    /// Largest handshake message: the RFC 1929 request (1 + 1 + 255 + 1 + 255 bytes); a greeting
    /// is at most 2 + 255 and a request at most 4 + 1 + 255 + 2.
    /// </summary>
    public const int MaxHandshakeMessage = 513;
}
