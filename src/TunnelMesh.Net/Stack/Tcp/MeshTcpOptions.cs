namespace TunnelMesh.Net;

/// <summary>The congestion control algorithm of a TCP connection.</summary>
public enum TcpCongestionControl
{
    /// <summary>CUBIC (RFC 9438), the default, as on Linux.</summary>
    Cubic = 0,

    /// <summary>NewReno (RFC 5681, RFC 6582).</summary>
    NewReno = 1,
}

/// <summary>Per-connection settings for mesh TCP connections (dialled or accepted).</summary>
public sealed class MeshTcpOptions
{
    /// <summary>The defaults.</summary>
    public static MeshTcpOptions Default { get; } = new();

    /// <summary>Disables Nagle's algorithm: small writes are sent at once instead of coalesced.</summary>
    /// <remarks>Default <see langword="false"/> (Nagle on, as for a kernel socket).</remarks>
    public bool NoDelay { get; init; }

    /// <summary>Idle time after which keepalive probes start; <see langword="null"/> disables keepalive.</summary>
    /// <remarks>Default <see langword="null"/> (off, as for a kernel socket). Linux's default when enabled is 2 hours.</remarks>
    public TimeSpan? KeepAliveTime { get; init; }

    /// <summary>Time between unanswered keepalive probes.</summary>
    /// <remarks>Default 75 seconds (Linux's tcp_keepalive_intvl).</remarks>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(75);

    /// <summary>Unanswered probes after which the connection is reset.</summary>
    /// <remarks>Default 9 (Linux's tcp_keepalive_probes).</remarks>
    public int KeepAliveProbes { get; init; } = 9;

    /// <summary>How long <c>DialAsync</c> waits for the handshake before failing with <see cref="System.Net.Sockets.SocketError.TimedOut"/>.</summary>
    /// <remarks>Default 30 seconds. SYNs are retransmitted after 1, 2, 4, 8 and 16 seconds within it.</remarks>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The largest receive buffer (and so receive window) the connection grows to.</summary>
    /// <remarks>Default 4 MiB. The buffer starts at 64 KiB and grows with the measured bandwidth-delay product.</remarks>
    public int MaxReceiveBufferSize { get; init; } = 4 << 20;

    /// <summary>The largest amount of unacknowledged plus unsent data the connection holds for sending; writes wait beyond it.</summary>
    /// <remarks>Default 4 MiB.</remarks>
    public int MaxSendBufferSize { get; init; } = 4 << 20;

    /// <summary>The congestion control algorithm.</summary>
    /// <remarks>Default <see cref="TcpCongestionControl.Cubic"/>.</remarks>
    public TcpCongestionControl CongestionControl { get; init; } = TcpCongestionControl.Cubic;

    internal void Validate(string name)
    {
        if (KeepAliveTime is { } idle && idle <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(name + "." + nameof(KeepAliveTime), idle, "Must be positive (or null to disable keepalive).");
        }

        if (KeepAliveInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(name + "." + nameof(KeepAliveInterval), KeepAliveInterval, "Must be positive.");
        }

        if (KeepAliveProbes < 1)
        {
            throw new ArgumentOutOfRangeException(name + "." + nameof(KeepAliveProbes), KeepAliveProbes, "Must be at least 1.");
        }

        if (ConnectTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(name + "." + nameof(ConnectTimeout), ConnectTimeout, "Must be positive.");
        }

        if (MaxReceiveBufferSize is < 4096 or > (1 << 30))
        {
            throw new ArgumentOutOfRangeException(name + "." + nameof(MaxReceiveBufferSize), MaxReceiveBufferSize, "Must be between 4 KiB and 1 GiB.");
        }

        if (MaxSendBufferSize is < 4096 or > (1 << 30))
        {
            throw new ArgumentOutOfRangeException(name + "." + nameof(MaxSendBufferSize), MaxSendBufferSize, "Must be between 4 KiB and 1 GiB.");
        }

        if (!Enum.IsDefined(CongestionControl))
        {
            throw new ArgumentOutOfRangeException(name + "." + nameof(CongestionControl), CongestionControl, "Unknown algorithm.");
        }
    }
}
