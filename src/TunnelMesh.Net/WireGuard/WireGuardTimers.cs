namespace TunnelMesh.Net.WireGuard;

/// <summary>The protocol's timing constants, from section 6 of the WireGuard whitepaper.</summary>
internal static class WireGuardTimers
{
    /// <summary>An initiator starts a new handshake on sending once its keypair is this old.</summary>
    public static readonly TimeSpan RekeyAfterTime = TimeSpan.FromSeconds(120);

    /// <summary>No packet is sent or accepted on a keypair this old.</summary>
    public static readonly TimeSpan RejectAfterTime = TimeSpan.FromSeconds(180);

    /// <summary>Handshake retransmission interval (plus jitter).</summary>
    public static readonly TimeSpan RekeyTimeout = TimeSpan.FromSeconds(5);

    /// <summary>How long handshakes are retried before the queued packets are dropped.</summary>
    public static readonly TimeSpan RekeyAttemptTime = TimeSpan.FromSeconds(90);

    /// <summary>Passive keepalive: sent this long after receiving data if nothing was sent back.</summary>
    public static readonly TimeSpan KeepaliveTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Most jitter added to a handshake retransmission.</summary>
    public static readonly TimeSpan MaxRekeyJitter = TimeSpan.FromMilliseconds(333);

    /// <summary>Minimum spacing of initiations accepted from one peer (at most 50 per second).</summary>
    public static readonly TimeSpan HandshakeInitiationRate = TimeSpan.FromMilliseconds(20);

    /// <summary>How long a cookie received in a cookie reply stays usable.</summary>
    public static readonly TimeSpan CookieRefreshTime = TimeSpan.FromSeconds(120);

    /// <summary>An initiator rekeys after this many messages on one keypair.</summary>
    public const ulong RekeyAfterMessages = 1UL << 60;

    /// <summary>No message is sent or accepted with a counter this large (2^64 − 2^13 − 1).</summary>
    public const ulong RejectAfterMessages = ulong.MaxValue - (1UL << 13);

    /// <summary>Keys are zeroed after this long without a new handshake (3 × RejectAfterTime).</summary>
    public static TimeSpan ZeroKeyMaterialAfter => RejectAfterTime * 3;

    /// <summary>Handshake attempts before giving up: RekeyAttemptTime / RekeyTimeout.</summary>
    public static int MaxHandshakeAttempts => (int)(RekeyAttemptTime / RekeyTimeout);

    /// <summary>An initiator that receives on a keypair this old starts a handshake (whitepaper 6.2).</summary>
    public static TimeSpan RekeyOnReceiveAge => RejectAfterTime - KeepaliveTimeout - RekeyTimeout;
}
