namespace TunnelMesh.Net;

/// <summary>Why a node dropped a datagram or packet. Counted per reason in the node's statistics.</summary>
public enum DropReason
{
    /// <summary>A datagram too short or of the wrong exact length for its WireGuard message type.</summary>
    MalformedMessage,

    /// <summary>A datagram whose first byte is not a known WireGuard message type.</summary>
    UnknownMessageType,

    /// <summary>A handshake message whose mac1 is wrong.</summary>
    InvalidMac1,

    /// <summary>A handshake message without a valid mac2 while under load (answered with a cookie).</summary>
    CookieRequired,

    /// <summary>A handshake message that failed to decrypt or authenticate, or came from an unknown static key.</summary>
    HandshakeFailed,

    /// <summary>A handshake initiation whose timestamp is not newer than the last one accepted (replay).</summary>
    HandshakeReplay,

    /// <summary>A handshake message over the per-peer or per-source rate limit.</summary>
    HandshakeRateLimited,

    /// <summary>A cookie reply that did not match an outstanding handshake or failed to decrypt.</summary>
    InvalidCookieReply,

    /// <summary>A transport message for a receiver index with no current keypair.</summary>
    UnknownReceiverIndex,

    /// <summary>A transport message whose AEAD tag did not verify.</summary>
    DecryptionFailed,

    /// <summary>A transport message with a counter already seen or too old for the replay window.</summary>
    Replay,

    /// <summary>A transport message on a keypair past its reject-after time or message limit.</summary>
    KeypairExpired,

    /// <summary>A decrypted packet whose source address is outside the sending peer's allowed IPs.</summary>
    SourceNotAllowed,

    /// <summary>A decrypted payload that is not a valid IP packet.</summary>
    MalformedPacket,

    /// <summary>An IPv4 packet whose header checksum is wrong.</summary>
    BadChecksum,

    /// <summary>An IP packet not addressed to this node.</summary>
    NotForThisNode,

    /// <summary>An IP packet of a protocol the stack does not handle.</summary>
    UnsupportedProtocol,

    /// <summary>A fragment dropped by reassembly (limits, overlap, timeout).</summary>
    Fragment,

    /// <summary>A UDP datagram to a port nobody listens on.</summary>
    PortUnreachable,

    /// <summary>An ICMP echo reply that no ping is waiting for (late, or never asked for).</summary>
    UnsolicitedReply,

    /// <summary>A packet dropped because the receiving socket's queue was full.</summary>
    QueueFull,

    /// <summary>An outgoing packet whose destination matches no peer's allowed IPs.</summary>
    NoRoute,

    /// <summary>An outgoing packet dropped while waiting for a handshake (queue full or handshake gave up).</summary>
    NoSession,

    /// <summary>A datagram the transport could not send.</summary>
    SendFailed,

    /// <summary>A TCP segment for a port with no listener and no connection (answered with RST).</summary>
    TcpNoConnection,

    /// <summary>A TCP segment outside the receive window, failing PAWS, or otherwise unacceptable (answered with an ACK as RFC 9293 asks).</summary>
    TcpUnacceptable,

    /// <summary>A SYN to a listener whose backlog of pending connections is full.</summary>
    TcpBacklogFull,

    /// <summary>Out-of-order TCP data that would have needed more reassembly ranges than the connection keeps.</summary>
    TcpReassemblyFull,

    /// <summary>A DNS message the node's DNS server did not answer for want of capacity (forwards or TCP connections at their limit), cut short by the end of its TCP connection, or that failed unexpectedly. See also <see cref="DnsNoHeader"/> and <see cref="DnsNotAQuery"/>.</summary>
    DnsDropped,

    /// <summary>A STUN message on the WireGuard socket that is not the answer to a binding request in flight (late, duplicate, malformed or unasked).</summary>
    StunUnmatched,

    /// <summary>A message to the node's DNS server shorter than the 12-byte DNS header, so there is no id to answer FORMERR to.</summary>
    DnsNoHeader,

    /// <summary>A message to the node's DNS server with QR set: a response, which a server never answers.</summary>
    DnsNotAQuery,

    /// <summary>A path ping was not answered: its peer used up its pong budget for the interval.</summary>
    PathProbeRateLimited,

    /// <summary>A datagram on the port-mapping socket that is not the answer to the NAT-PMP or PCP request in flight (malformed, from another address or port than the gateway's, another opcode, nonce, protocol or port, or late).</summary>
    PortMappingUnmatched,
}
