namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// Spec constants of the WireGuard protocol (whitepaper §5.4 and §6.1): names, labels, message limits
/// and timers. Implementation choices (queue sizes and the like) live elsewhere.
/// </summary>
internal static class ProtocolConstants
{
    /// <summary>The Noise construction name, hashed into the initial chaining key.</summary>
    public static ReadOnlySpan<byte> Construction => "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"u8;

    /// <summary>The WireGuard identifier, hashed into the initial handshake hash.</summary>
    public static ReadOnlySpan<byte> Identifier => "WireGuard v1 zx2c4 Jason@zx2c4.com"u8;

    /// <summary>Label for the mac1 key: HASH(LABEL_MAC1 || Spub).</summary>
    public static ReadOnlySpan<byte> LabelMac1 => "mac1----"u8;

    /// <summary>Label for the cookie key: HASH(LABEL_COOKIE || Spub).</summary>
    public static ReadOnlySpan<byte> LabelCookie => "cookie--"u8;

    /// <summary>Messages after which a new handshake is started (2^60).</summary>
    public const ulong RekeyAfterMessages = 1UL << 60;

    /// <summary>Messages after which a keypair is no longer used (2^64 - 2^13 - 1).</summary>
    public const ulong RejectAfterMessages = ulong.MaxValue - (1UL << 13);

    /// <summary>Age after which a new handshake is started by the initiator.</summary>
    public static readonly TimeSpan RekeyAfterTime = TimeSpan.FromSeconds(120);

    /// <summary>Age after which a keypair is no longer used.</summary>
    public static readonly TimeSpan RejectAfterTime = TimeSpan.FromSeconds(180);

    /// <summary>How long handshake attempts are retried.</summary>
    public static readonly TimeSpan RekeyAttemptTime = TimeSpan.FromSeconds(90);

    /// <summary>Retransmission timeout of a handshake initiation.</summary>
    public static readonly TimeSpan RekeyTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Delay before a keepalive answers received data.</summary>
    public static readonly TimeSpan KeepaliveTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Lifetime of a cookie, and rotation period of the responder's cookie secret.</summary>
    public static readonly TimeSpan CookieRefreshTime = TimeSpan.FromSeconds(120);

    /// <summary>Most jitter added to a handshake retransmission (whitepaper §6.1, wireguard-go's 333 ms).</summary>
    public static readonly TimeSpan MaxRekeyJitter = TimeSpan.FromMilliseconds(333);

    /// <summary>Minimum spacing of initiations accepted from one peer: at most 50 per second.</summary>
    public static readonly TimeSpan HandshakeInitiationRate = TimeSpan.FromMilliseconds(20);

    /// <summary>Keys are zeroed after this long without a new handshake (3 × REJECT_AFTER_TIME).</summary>
    public static TimeSpan ZeroKeyMaterialAfter => RejectAfterTime * 3;

    /// <summary>Handshake retries before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT.</summary>
    public static int MaxHandshakeAttempts => (int)(RekeyAttemptTime / RekeyTimeout);

    /// <summary>An initiator that receives on a keypair this old starts a handshake (whitepaper §6.2).</summary>
    public static TimeSpan RekeyOnReceiveAge => RejectAfterTime - KeepaliveTimeout - RekeyTimeout;
}
