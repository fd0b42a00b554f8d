namespace TunnelMesh.Net.Stack.Tcp;

/// <summary>
/// The sender's congestion window of one TCP connection: how many bytes may be in flight. The
/// connection reports what happens (new data acknowledged, loss detected, recovery over, a
/// retransmission timeout, an idle period) and reads <see cref="CongestionWindow"/>; the algorithm
/// (<see cref="NewRenoController"/>, <see cref="CubicController"/>) decides the numbers.
/// </summary>
/// <remarks>
/// <para>
/// Shared behaviour: the initial window of RFC 6928, slow start with appropriate byte counting
/// (RFC 3465, limit L = 2·SMSS per ACK), the restart window after idle (RFC 5681 section 4.1), and
/// the application-limited rule below. Loss recovery itself (what to retransmit, the pipe) belongs to
/// the connection and its SACK scoreboard; during recovery the connection does not call
/// <see cref="OnAck"/>, and the window stays at the reduced value (RFC 6675's model, no inflation).
/// </para>
/// <para>
/// <b>Application-limited rule.</b> An ACK grows the window only if the flight just before it,
/// <c>bytesInFlight + ackedBytes</c>, was at least half the window (the "validated" test of RFC
/// 7661; in slow start it is Linux's rule that the window may at most double the flight). A sender
/// that leaves most of its window unused has not tested the path at that size, so growing further
/// would only license a later burst.
/// </para>
/// <para>
/// Repeated timeouts: a timeout before any new data has been acknowledged since the previous one
/// (the same segment retransmitted again) keeps the slow start threshold (RFC 5681 section 3.1,
/// as Linux does); only the window drops to one segment.
/// </para>
/// <para>Not thread-safe: owned by the stack loop. Allocation-free.</para>
/// </remarks>
internal abstract class CongestionController
{
    /// <summary>
    /// The per-ACK slow start increase limit L of RFC 3465, in segments: as many as one stretch
    /// ACK covers (<see cref="TcpConstants.MaxAckStretchSegments"/>), as Linux counts every
    /// segment an ACK covers; with RFC 3465's L = 2 a receiver that ACKs once per received batch
    /// would slow slow start eightfold.
    /// </summary>
    protected const int SlowStartAckLimitSegments = TcpConstants.MaxAckStretchSegments;

    private int _mss;

    /// <summary>Sets the initial window for <paramref name="mss"/> and an unbounded slow start threshold.</summary>
    /// <param name="mss">The sender maximum segment size (SMSS), in bytes.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="mss"/> is not positive.</exception>
    protected CongestionController(int mss)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(mss, 0);
        _mss = mss;
        CongestionWindow = InitialWindowFor(mss);
        SlowStartThreshold = long.MaxValue;
    }

    /// <summary>The sender maximum segment size (SMSS) in bytes, the unit of every increase and of the loss window.</summary>
    /// <remarks>
    /// Meant to change at most once, when the handshake has settled the MSS. If the window is still
    /// the untouched initial window (nothing acknowledged, no loss, threshold still unbounded), it
    /// becomes the initial window of the new MSS. Otherwise the window and threshold keep their byte
    /// values, raised if needed to one new segment and two new segments respectively, and later
    /// changes are counted in new segments.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">The value is not positive.</exception>
    public int Mss
    {
        get => _mss;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(value, 0);
            bool untouched = CongestionWindow == InitialWindowFor(_mss) && SlowStartThreshold == long.MaxValue;
            _mss = value;
            if (untouched)
            {
                CongestionWindow = InitialWindowFor(value);
                return;
            }

            CongestionWindow = Math.Max(CongestionWindow, value);
            if (SlowStartThreshold != long.MaxValue)
            {
                SlowStartThreshold = Math.Max(SlowStartThreshold, 2L * value);
            }
        }
    }

    /// <summary>The congestion window (cwnd) in bytes.</summary>
    public long CongestionWindow { get; protected set; }

    /// <summary>The slow start threshold (ssthresh) in bytes; <see cref="long.MaxValue"/> until the first loss.</summary>
    public long SlowStartThreshold { get; protected set; }

    /// <summary>Whether the window is below the threshold, so ACKs grow it exponentially.</summary>
    public bool InSlowStart => CongestionWindow < SlowStartThreshold;

    /// <summary>The initial window for the current MSS (RFC 6928): min(10·MSS, max(2·MSS, 14600)).</summary>
    public long InitialWindow => InitialWindowFor(_mss);

    /// <summary>
    /// Whether a loss recovery entered by <see cref="OnCongestionEvent"/> is still open (until
    /// <see cref="OnRecoveryExit"/> or a timeout).
    /// </summary>
    protected bool InRecovery { get; set; }

    /// <summary>Whether a retransmission timeout happened and no new data has been acknowledged since.</summary>
    protected bool TimedOutSinceLastAck { get; set; }

    /// <summary>The initial window of RFC 6928 for a given MSS.</summary>
    public static long InitialWindowFor(int mss) => Math.Min(10L * mss, Math.Max(2L * mss, 14_600));

    /// <summary>
    /// New data was cumulatively acknowledged outside loss recovery: grow the window (slow start or
    /// congestion avoidance), unless the sender was application-limited (see the remarks on the class).
    /// </summary>
    /// <param name="ackedBytes">Bytes newly acknowledged by this ACK (SND.UNA's advance).</param>
    /// <param name="bytesInFlight">Bytes still outstanding after this ACK.</param>
    /// <param name="now">Monotonic time of the ACK.</param>
    /// <param name="rttSample">The RTT measured from this ACK, if any.</param>
    /// <param name="minRtt">The smallest RTT measured on the connection so far, if any.</param>
    public abstract void OnAck(long ackedBytes, long bytesInFlight, TimeSpan now, TimeSpan? rttSample, TimeSpan? minRtt);

    /// <summary>
    /// Loss was detected by duplicate ACKs or SACK: the connection enters fast recovery. Reduces the
    /// threshold and sets the window to it (the algorithm chooses the factor).
    /// </summary>
    /// <param name="bytesInFlight">FlightSize when the loss was detected (SND.NXT − SND.UNA).</param>
    /// <param name="now">Monotonic time of the event.</param>
    public abstract void OnCongestionEvent(long bytesInFlight, TimeSpan now);

    /// <summary>
    /// Fast recovery is over (the cumulative ACK passed the recovery point): the window is set to the
    /// threshold (RFC 6582 option 2, RFC 6675 section 5). Does nothing if no recovery is open, for
    /// instance when a timeout ended it.
    /// </summary>
    /// <param name="now">Monotonic time of the ACK that ended recovery.</param>
    public virtual void OnRecoveryExit(TimeSpan now)
    {
        if (!InRecovery)
        {
            return;
        }

        InRecovery = false;
        CongestionWindow = SlowStartThreshold;
    }

    /// <summary>
    /// The retransmission timer expired: the threshold is reduced (by the algorithm's factor, except
    /// for a repeated timeout, see the class remarks), the window drops to the loss window of one
    /// segment, and any open fast recovery is abandoned.
    /// </summary>
    /// <param name="bytesInFlight">FlightSize when the timer expired.</param>
    /// <param name="now">Monotonic time of the expiry.</param>
    public abstract void OnRetransmissionTimeout(long bytesInFlight, TimeSpan now);

    /// <summary>
    /// The connection is about to send after <paramref name="idleTime"/> with nothing in flight. After
    /// more than one RTO of idleness the window restarts at min(cwnd, initial window) (RFC 5681
    /// section 4.1); the threshold is kept.
    /// </summary>
    /// <param name="idleTime">Time since the last transmission (or since the last ACK, whichever is later).</param>
    /// <param name="rto">The current retransmission timeout.</param>
    public void OnIdle(TimeSpan idleTime, TimeSpan rto)
    {
        bool restart = idleTime > rto && CongestionWindow > InitialWindow;
        if (restart)
        {
            CongestionWindow = InitialWindow;
        }

        OnIdleCore(idleTime, restart);
    }

    /// <summary>Lets an algorithm adjust its own state after an idle period (called by <see cref="OnIdle"/>).</summary>
    /// <param name="idleTime">The idle time.</param>
    /// <param name="windowRestarted">Whether the window was just reduced to the restart window.</param>
    protected virtual void OnIdleCore(TimeSpan idleTime, bool windowRestarted)
    {
    }

    /// <summary>Applies the application-limited rule: whether the flight before this ACK was at least half the window.</summary>
    /// <param name="ackedBytes">Bytes acknowledged by the ACK.</param>
    /// <param name="bytesInFlight">Bytes outstanding after the ACK.</param>
    protected bool IsWindowLimited(long ackedBytes, long bytesInFlight) => 2 * (bytesInFlight + ackedBytes) >= CongestionWindow;

    /// <summary>
    /// Slow start with appropriate byte counting: grows the window by min(acked, 2·MSS), but not past
    /// the threshold. Returns the acknowledged bytes left over for congestion avoidance (when the
    /// window reached the threshold within this ACK), else 0.
    /// </summary>
    /// <param name="ackedBytes">Bytes acknowledged by the ACK.</param>
    protected long SlowStart(long ackedBytes)
    {
        long increase = Math.Min(ackedBytes, SlowStartAckLimitSegments * (long)_mss);
        long room = SlowStartThreshold - CongestionWindow;
        if (increase < room)
        {
            CongestionWindow += increase;
            return 0;
        }

        CongestionWindow = SlowStartThreshold;
        return ackedBytes - room;
    }
}
