namespace TunnelMesh.Net.WireGuard;

/// <summary>Outcome of <see cref="Keypair.TryOpen"/>.</summary>
internal enum OpenResult
{
    /// <summary>Authenticated, decrypted and accepted by the replay window.</summary>
    Ok,

    /// <summary>Too short, or the tag did not verify.</summary>
    DecryptionFailed,

    /// <summary>Authentic, but the counter was seen before or is too old for the window.</summary>
    Replay,

    /// <summary>Authentic, but the counter is at or past REJECT_AFTER_MESSAGES.</summary>
    Expired,
}
