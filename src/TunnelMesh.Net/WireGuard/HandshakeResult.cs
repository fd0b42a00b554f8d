namespace TunnelMesh.Net.WireGuard;

/// <summary>Outcome of consuming a handshake message.</summary>
internal enum HandshakeResult
{
    /// <summary>Accepted; the handshake state moved on.</summary>
    Ok,

    /// <summary>Wrong length or type, or a small-order ephemeral key.</summary>
    Malformed,

    /// <summary>An AEAD field did not authenticate (wrong keys, tampering, PSK mismatch).</summary>
    DecryptionFailed,

    /// <summary>The initiation's static key is not a known peer.</summary>
    UnknownPeer,

    /// <summary>The initiation's timestamp is not newer than the newest accepted from that peer.</summary>
    Replay,

    /// <summary>The handshake is not in a state that expects this message.</summary>
    WrongState,
}
