namespace TunnelMesh.Net.Stack.Tcp;

/// <summary>The TCP states of RFC 9293 section 3.3.2.</summary>
internal enum TcpState
{
    /// <summary>No connection (or one that has ended).</summary>
    Closed,

    /// <summary>SYN sent, waiting for the SYN-ACK.</summary>
    SynSent,

    /// <summary>SYN received and answered, waiting for the ACK of our SYN.</summary>
    SynReceived,

    /// <summary>Open in both directions.</summary>
    Established,

    /// <summary>We closed (FIN queued or sent), waiting for its ACK.</summary>
    FinWait1,

    /// <summary>Our FIN is acknowledged; waiting for the peer's FIN.</summary>
    FinWait2,

    /// <summary>The peer closed; we may still send.</summary>
    CloseWait,

    /// <summary>Both closed at once; waiting for the ACK of our FIN.</summary>
    Closing,

    /// <summary>The peer closed first, then we did; waiting for the ACK of our FIN.</summary>
    LastAck,

    /// <summary>Both FINs acknowledged; lingering 2·MSL to absorb stray segments.</summary>
    TimeWait,
}

/// <summary>Implementation constants of the TCP (protocol constants come from the RFCs cited).</summary>
internal static class TcpConstants
{
    /// <summary>RFC 9293's default MSS when the peer sends none (536 for IPv4).</summary>
    public const int DefaultMss = 536;

    /// <summary>Smallest MSS accepted from a peer (Linux clamps to 48; smaller values would make segments mostly header).</summary>
    public const int MinMss = 88;

    /// <summary>Headers of a TCP/IPv4 segment without options.</summary>
    public const int Ipv4TcpHeaders = 40;

    /// <summary>Bytes of the timestamps option as sent on every segment (NOP, NOP, kind, length, 8 bytes).</summary>
    public const int TimestampOptionSpace = 12;

    /// <summary>Receive buffer a connection starts with.</summary>
    public const int InitialReceiveBuffer = 64 * 1024;

    /// <summary>Send buffer a connection starts with (grows up to the option's maximum as the window opens).</summary>
    public const int InitialSendBuffer = 64 * 1024;

    /// <summary>RFC 6298 initial RTO.</summary>
    public static readonly TimeSpan InitialRto = TimeSpan.FromSeconds(1);

    /// <summary>Lower bound of the RTO (Linux's TCP_RTO_MIN; RFC 6298 allows less than its 1 s recommendation).</summary>
    public static readonly TimeSpan MinRto = TimeSpan.FromMilliseconds(200);

    /// <summary>RFC 6298 5.7: the RTO data starts with when the SYN or SYN-ACK timed out and the RTO is below it.</summary>
    public static readonly TimeSpan RtoAfterSynTimeout = TimeSpan.FromSeconds(3);

    /// <summary>Upper bound of the RTO (RFC 6298 2.5: at least 60 s).</summary>
    public static readonly TimeSpan MaxRto = TimeSpan.FromSeconds(60);

    /// <summary>Delay of a delayed ACK (Linux's minimum ATO; RFC 9293 requires under 0.5 s).</summary>
    public static readonly TimeSpan DelayedAck = TimeSpan.FromMilliseconds(40);

    /// <summary>TIME_WAIT lasts 2·MSL; like Linux we use 60 s.</summary>
    public static readonly TimeSpan TimeWait = TimeSpan.FromSeconds(60);

    /// <summary>How long a connection closed by the application waits in FIN_WAIT_2 for the peer's FIN (Linux's tcp_fin_timeout).</summary>
    public static readonly TimeSpan FinWait2Timeout = TimeSpan.FromSeconds(60);

    /// <summary>Bounds of the persist (zero-window probe) timer.</summary>
    public static readonly TimeSpan MaxPersist = TimeSpan.FromSeconds(60);

    /// <summary>SYN retransmissions before a dial fails (Linux's tcp_syn_retries).</summary>
    public const int MaxSynRetries = 6;

    /// <summary>SYN-ACK retransmissions before a half-open connection is dropped (Linux's tcp_synack_retries).</summary>
    public const int MaxSynAckRetries = 5;

    /// <summary>Retransmissions of data before the connection is reset (Linux's tcp_retries2).</summary>
    public const int MaxRetries = 15;

    /// <summary>Duplicate ACKs that trigger fast retransmit (RFC 5681 DupThresh).</summary>
    public const int DupThresh = 3;

    /// <summary>Out-of-order ranges a receiver tracks (and so at most this many holes).</summary>
    public const int MaxReassemblyRanges = 32;

    /// <summary>SACKed ranges a sender tracks.</summary>
    public const int MaxScoreboardRanges = 32;

    /// <summary>Retransmissions of one SACK recovery watched for loss (more are left to the RTO).</summary>
    public const int MaxTrackedRetransmissions = 256;

    /// <summary>The shortest tail loss probe timeout (RFC 8985 section 7.2 allows any floor; Linux uses 10 ms).</summary>
    public static readonly TimeSpan MinProbeTimeout = TimeSpan.FromMilliseconds(10);

    /// <summary>Consecutive timeouts repaired with the SACK scoreboard before it is distrusted and cleared.</summary>
    public const int TimeoutsBeforeForgettingSacks = 2;

    /// <summary>In-order full segments received before an ACK is sent at once instead of delayed (RFC 9293 3.8.6.3: at least every second).</summary>
    public const int AckEverySegments = 2;

    /// <summary>The most full segments one ACK covers when ACKs are held to the end of a received batch.</summary>
    public const int MaxAckStretchSegments = 16;
}
