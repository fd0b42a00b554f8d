namespace TunnelMesh.Net.Stack.Tcp;

/// <summary>
/// NewReno congestion control (RFC 5681 with the recovery of RFC 6582/6675): slow start, then
/// congestion avoidance adding one MSS per window of acknowledged bytes (byte counting, RFC 3465
/// section 2.1, about one MSS per RTT); on loss the threshold and window become half the flight.
/// </summary>
internal sealed class NewRenoController : CongestionController
{
    private long _bytesAcked;

    /// <summary>Creates the controller with the initial window of <paramref name="mss"/>.</summary>
    /// <param name="mss">The sender maximum segment size in bytes.</param>
    public NewRenoController(int mss)
        : base(mss)
    {
    }

    /// <inheritdoc/>
    /// <remarks>
    /// In congestion avoidance the acknowledged bytes accumulate; each time they reach the window, the
    /// window grows by one MSS (RFC 3465 section 2.1).
    /// </remarks>
    public override void OnAck(long ackedBytes, long bytesInFlight, TimeSpan now, TimeSpan? rttSample, TimeSpan? minRtt)
    {
        if (ackedBytes <= 0)
        {
            return;
        }

        TimedOutSinceLastAck = false;
        if (!IsWindowLimited(ackedBytes, bytesInFlight))
        {
            return;
        }

        if (InSlowStart)
        {
            ackedBytes = SlowStart(ackedBytes);
            if (ackedBytes == 0)
            {
                return;
            }
        }

        _bytesAcked += ackedBytes;
        if (_bytesAcked >= CongestionWindow)
        {
            _bytesAcked -= CongestionWindow;
            CongestionWindow += Mss;
            // A huge stretch ACK earns at most one MSS per ACK; keep no more than a window of credit.
            _bytesAcked = Math.Min(_bytesAcked, CongestionWindow - 1);
        }
    }

    /// <inheritdoc/>
    /// <remarks>ssthresh = max(FlightSize / 2, 2·MSS) (RFC 5681 equation 4); cwnd = ssthresh.</remarks>
    public override void OnCongestionEvent(long bytesInFlight, TimeSpan now)
    {
        SlowStartThreshold = HalfFlight(bytesInFlight);
        CongestionWindow = SlowStartThreshold;
        _bytesAcked = 0;
        InRecovery = true;
    }

    /// <inheritdoc/>
    /// <remarks>ssthresh = max(FlightSize / 2, 2·MSS) unless the timeout repeats; cwnd = 1 MSS.</remarks>
    public override void OnRetransmissionTimeout(long bytesInFlight, TimeSpan now)
    {
        if (!TimedOutSinceLastAck)
        {
            SlowStartThreshold = HalfFlight(bytesInFlight);
        }

        CongestionWindow = Mss;
        _bytesAcked = 0;
        InRecovery = false;
        TimedOutSinceLastAck = true;
    }

    /// <inheritdoc/>
    public override void OnRecoveryExit(TimeSpan now)
    {
        base.OnRecoveryExit(now);
        _bytesAcked = 0;
    }

    private long HalfFlight(long bytesInFlight) => Math.Max(bytesInFlight / 2, 2L * Mss);
}
