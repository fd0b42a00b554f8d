namespace TunnelMesh.Net.Stack.Tcp;

/// <summary>
/// CUBIC congestion control (RFC 9438), Linux's default. After a loss the window follows
/// W_cubic(t) = C·(t − K)³ + W_max (in segments, t in seconds since the congestion avoidance stage
/// began): concave up to the window where the loss happened, W_max, reached at t = K, then convex
/// beyond it; never slower than the Reno-friendly estimate W_est.
/// </summary>
/// <remarks>
/// <para>
/// Constants: C = 0.4, β_cubic = 0.7, α_cubic = 3(1 − β)/(1 + β) ≈ 0.53 while W_est is below the window
/// before the last reduction (cwnd_prior) and 1 after (RFC 9438 section 4.3), fast convergence on.
/// </para>
/// <para>
/// On each ACK in congestion avoidance (section 4.2–4.5): W_est += α·(acked segments / cwnd); if
/// W_cubic(t) &lt; W_est the window is set to W_est (the Reno-friendly region), else the target
/// W_cubic(t + RTT), clamped to [cwnd, 1.5·cwnd], is approached by (target − cwnd)/cwnd per acked
/// segment. The RTT here is the minimum RTT measured (as Linux's delay_min; the latest sample if none,
/// zero if neither), which queueing does not inflate. K = cbrt((W_max − cwnd_epoch)/C) with cwnd_epoch
/// the window when the stage began, which after a loss is β·W_max, giving K = cbrt(W_max(1 − β)/C).
/// </para>
/// <para>
/// Slow start is the plain RFC 5681 one with byte counting (no HyStart++, which RFC 9438 allows
/// but does not require). Application-limited ACKs do not grow the window, and the time between
/// such ACKs, and short idle periods, are left out of t (section 5.8), so the curve is shifted rather
/// than jumped ahead when the application resumes.
/// </para>
/// <para>
/// A retransmission timeout (section 4.8) sets ssthresh as a congestion event does, cwnd to one
/// MSS, and ends the epoch; the first congestion avoidance stage after it uses K = 0 and W_max =
/// W_est = the window at the stage's beginning.
/// </para>
/// </remarks>
internal sealed class CubicController : CongestionController
{
    /// <summary>CUBIC's scaling constant C, in segments per second³.</summary>
    public const double C = 0.4;

    /// <summary>CUBIC's multiplicative decrease factor β_cubic.</summary>
    public const double Beta = 0.7;

    /// <summary>The Reno-friendly additive increase α_cubic = 3(1 − β)/(1 + β), in segments per RTT.</summary>
    public const double RenoFriendlyAlpha = 3 * (1 - Beta) / (1 + Beta);

    /// <summary>The upper clamp of the target, as a multiple of cwnd.</summary>
    private const double MaxTargetRatio = 1.5;

    private TimeSpan? _epochStart;
    private TimeSpan _lastAck;
    private double _wMax;      // bytes
    private double _cwndPrior; // bytes
    private double _wEst;      // bytes
    private double _k;         // seconds (negative when the stage starts above W_max)
    private double _carry;     // fraction of a byte of growth not yet added to cwnd
    private bool _afterTimeout;

    /// <summary>Creates the controller with the initial window of <paramref name="mss"/>.</summary>
    /// <param name="mss">The sender maximum segment size in bytes.</param>
    public CubicController(int mss)
        : base(mss)
    {
    }

    /// <summary>W_max in bytes: the window before the last reduction, lowered by fast convergence (0 before any loss).</summary>
    public double MaxWindow => _wMax;

    /// <summary>K: the time from the start of the current stage until W_cubic reaches W_max, or <see langword="null"/> outside a stage.</summary>
    public TimeSpan? TimeToMaxWindow => _epochStart is null ? null : TimeSpan.FromSeconds(_k);

    /// <summary>The start of the current congestion avoidance stage (t = 0), shifted by application-limited time; <see langword="null"/> outside one.</summary>
    public TimeSpan? EpochStart => _epochStart;

    /// <summary>The Reno-friendly estimate W_est in bytes (meaningful inside a stage).</summary>
    public double RenoEstimate => _wEst;

    /// <summary>W_cubic(t) in bytes for the current W_max and K (t in seconds since <see cref="EpochStart"/>).</summary>
    /// <param name="t">Elapsed time in the stage, in seconds.</param>
    public double CubicWindow(double t)
    {
        double d = t - _k;
        return (C * d * d * d * Mss) + _wMax;
    }

    /// <inheritdoc/>
    public override void OnAck(long ackedBytes, long bytesInFlight, TimeSpan now, TimeSpan? rttSample, TimeSpan? minRtt)
    {
        if (ackedBytes <= 0)
        {
            return;
        }

        TimedOutSinceLastAck = false;
        if (!IsWindowLimited(ackedBytes, bytesInFlight))
        {
            // Section 5.8: no growth, and the time since the last ACK does not count towards t.
            if (_epochStart is { } start && now > _lastAck)
            {
                _epochStart = start + (now - _lastAck);
            }

            _lastAck = now;
            return;
        }

        if (InSlowStart)
        {
            ackedBytes = SlowStart(ackedBytes);
            if (ackedBytes == 0)
            {
                _lastAck = now;
                return;
            }
        }

        CongestionAvoidance(ackedBytes, now, minRtt ?? rttSample ?? TimeSpan.Zero);
        _lastAck = now;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// cwnd_prior = cwnd; W_max = cwnd, or cwnd·(1 + β)/2 when cwnd is below the previous W_max (fast
    /// convergence, section 4.7); ssthresh = max(FlightSize·β, 2·MSS); cwnd = ssthresh; the epoch ends.
    /// </remarks>
    public override void OnCongestionEvent(long bytesInFlight, TimeSpan now)
    {
        Reduce(bytesInFlight);
        CongestionWindow = SlowStartThreshold;
        InRecovery = true;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// As a congestion event for ssthresh and W_max (unless the timeout repeats), then cwnd = 1 MSS;
    /// the next congestion avoidance stage starts with K = 0 and W_max = its initial window (section 4.8).
    /// </remarks>
    public override void OnRetransmissionTimeout(long bytesInFlight, TimeSpan now)
    {
        if (!TimedOutSinceLastAck)
        {
            Reduce(bytesInFlight);
        }

        CongestionWindow = Mss;
        _epochStart = null;
        _carry = 0;
        _afterTimeout = true;
        InRecovery = false;
        TimedOutSinceLastAck = true;
    }

    /// <inheritdoc/>
    protected override void OnIdleCore(TimeSpan idleTime, bool windowRestarted)
    {
        if (windowRestarted)
        {
            // Back in slow start from the restart window: a new stage begins when it reaches ssthresh.
            _epochStart = null;
            _carry = 0;
        }
        else if (_epochStart is { } start && idleTime > TimeSpan.Zero)
        {
            _epochStart = start + idleTime;
            _lastAck += idleTime;
        }
    }

    private void Reduce(long bytesInFlight)
    {
        double cwnd = CongestionWindow;
        _cwndPrior = cwnd;
        _wMax = cwnd < _wMax ? cwnd * (1 + Beta) / 2 : cwnd;
        SlowStartThreshold = Math.Max((long)Math.Round(bytesInFlight * Beta), 2L * Mss);
        _epochStart = null;
        _carry = 0;
        _afterTimeout = false;
    }

    private void CongestionAvoidance(long ackedBytes, TimeSpan now, TimeSpan rtt)
    {
        double mss = Mss;
        double cwnd = CongestionWindow + _carry;
        if (_epochStart is null)
        {
            _epochStart = now;
            if (_afterTimeout)
            {
                _wMax = cwnd;
                _afterTimeout = false;
            }

            _k = Math.Cbrt((_wMax - cwnd) / mss / C);
            _wEst = cwnd;
        }

        double t = (now - _epochStart.Value).TotalSeconds;
        double alpha = _wEst >= _cwndPrior ? 1 : RenoFriendlyAlpha;
        _wEst += alpha * ackedBytes / cwnd * mss;

        if (CubicWindow(t) < _wEst)
        {
            cwnd = Math.Max(cwnd, _wEst);
        }
        else
        {
            double target = Math.Clamp(CubicWindow(t + rtt.TotalSeconds), cwnd, MaxTargetRatio * cwnd);
            cwnd += (target - cwnd) / cwnd * ackedBytes;
        }

        if (cwnd >= long.MaxValue / 2)
        {
            CongestionWindow = long.MaxValue / 2;
            _carry = 0;
            return;
        }

        long whole = (long)cwnd;
        _carry = cwnd - whole;
        CongestionWindow = whole;
    }
}
