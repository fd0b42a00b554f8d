namespace TunnelMesh.Net.Stack.Tcp;

/// <summary>
/// The retransmission timeout of one TCP connection, computed from round-trip samples as RFC 6298
/// specifies: a smoothed RTT (gain α = 1/8), a mean deviation (gain β = 1/4), RTO = SRTT +
/// max(G, 4·RTTVAR) with a clock granularity G of 1 ms, clamped to [min, max], and doubled after
/// each retransmission timeout until a new sample arrives.
/// </summary>
/// <remarks>
/// <para>
/// The caller feeds only valid samples: per Karn's algorithm (RFC 6298 section 3), an ACK for a
/// retransmitted segment gives no sample unless the timestamp option (RFC 7323) identifies the
/// transmission. Negative samples (a bad echoed timestamp) are ignored rather than thrown on, because
/// they derive from what the peer sent.
/// </para>
/// <para>
/// Not thread-safe (owned by the stack loop); allocation-free. Arithmetic is on
/// <see cref="TimeSpan"/> ticks (100 ns), far finer than the 1 ms granularity.
/// </para>
/// </remarks>
internal sealed class RttEstimator
{
    /// <summary>The clock granularity G of RFC 6298 section 2 (1 ms).</summary>
    public static readonly TimeSpan ClockGranularity = TimeSpan.FromMilliseconds(1);

    /// <summary>The largest sample taken at face value (1 hour), which keeps the arithmetic far from overflow.</summary>
    public static readonly TimeSpan MaxSample = TimeSpan.FromHours(1);

    /// <summary>RFC 6298's K: the RTO allows this many mean deviations above the smoothed RTT.</summary>
    private const int DeviationFactor = 4;

    private readonly TimeSpan _minRto;
    private readonly TimeSpan _maxRto;
    private TimeSpan _baseRto;
    private TimeSpan _srtt;
    private TimeSpan _rttvar;
    private TimeSpan _minRtt;
    private bool _hasSamples;

    /// <summary>Creates an estimator with no samples yet.</summary>
    /// <param name="initialRto">The RTO before the first sample (RFC 6298: 1 s); clamped to [<paramref name="minRto"/>, <paramref name="maxRto"/>].</param>
    /// <param name="minRto">The lower bound of the RTO (RFC 6298 recommends 1 s; Linux uses 200 ms).</param>
    /// <param name="maxRto">The upper bound of the RTO, also the cap of the backoff (RFC 6298: at least 60 s; Linux 120 s).</param>
    /// <exception cref="ArgumentOutOfRangeException">A bound is not positive, or <paramref name="minRto"/> exceeds <paramref name="maxRto"/>.</exception>
    public RttEstimator(TimeSpan initialRto, TimeSpan minRto, TimeSpan maxRto)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(minRto, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRto, minRto);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(initialRto, TimeSpan.Zero);
        _minRto = minRto;
        _maxRto = maxRto;
        _baseRto = Clamp(initialRto);
    }

    /// <summary>
    /// The current retransmission timeout including the exponential backoff:
    /// min(maxRto, base RTO · 2^<see cref="BackoffCount"/>).
    /// </summary>
    public TimeSpan Rto
    {
        get
        {
            // Saturate instead of overflowing: past 2^40 any base RTO of at least 100 ns exceeds any sane maximum.
            if (BackoffCount >= 40 || _baseRto.Ticks > (_maxRto.Ticks >> BackoffCount))
            {
                return _maxRto;
            }

            return TimeSpan.FromTicks(_baseRto.Ticks << BackoffCount);
        }
    }

    /// <summary>The smoothed round-trip time (SRTT), or <see langword="null"/> before the first sample.</summary>
    public TimeSpan? SmoothedRtt => _hasSamples ? _srtt : null;

    /// <summary>The round-trip time variation (RTTVAR); zero before the first sample.</summary>
    public TimeSpan RttVariance => _rttvar;

    /// <summary>The smallest sample seen over the connection's life, or <see langword="null"/> before the first sample.</summary>
    /// <remarks>Not windowed: a route change to a longer path leaves it low (CUBIC only uses it as its RTT scale).</remarks>
    public TimeSpan? MinRtt => _hasSamples ? _minRtt : null;

    /// <summary>How many times <see cref="Backoff"/> was called since the last sample (or since creation).</summary>
    /// <remarks>
    /// A new sample resets it, so it is not a count of consecutive retransmissions of one segment;
    /// a connection that gives up after N timeouts should count those itself.
    /// </remarks>
    public int BackoffCount { get; private set; }

    /// <summary>Whether at least one sample has been added.</summary>
    public bool HasSamples => _hasSamples;

    /// <summary>
    /// Adds one round-trip measurement (RFC 6298 section 2): the first sets SRTT = R and RTTVAR = R/2;
    /// later ones update RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R| and then SRTT = 7/8·SRTT + 1/8·R. The base
    /// RTO becomes SRTT + max(G, 4·RTTVAR), clamped, and the backoff is cleared.
    /// </summary>
    /// <param name="rtt">The measured round-trip time; negative values are ignored, values above <see cref="MaxSample"/> count as that.</param>
    public void AddSample(TimeSpan rtt)
    {
        if (rtt < TimeSpan.Zero)
        {
            return;
        }

        if (rtt > MaxSample)
        {
            rtt = MaxSample;
        }

        if (!_hasSamples)
        {
            _srtt = rtt;
            _rttvar = rtt / 2;
            _minRtt = rtt;
            _hasSamples = true;
        }
        else
        {
            var deviation = (_srtt - rtt).Duration();
            _rttvar = TimeSpan.FromTicks((3 * _rttvar.Ticks + deviation.Ticks) / 4);
            _srtt = TimeSpan.FromTicks((7 * _srtt.Ticks + rtt.Ticks) / 8);
            if (rtt < _minRtt)
            {
                _minRtt = rtt;
            }
        }

        var spread = TimeSpan.FromTicks(DeviationFactor * _rttvar.Ticks);
        _baseRto = Clamp(_srtt + (spread > ClockGranularity ? spread : ClockGranularity));
        BackoffCount = 0;
    }

    /// <summary>
    /// Doubles the RTO after a retransmission timeout (RFC 6298 section 5.5), up to the maximum.
    /// The count keeps rising past the cap (see <see cref="BackoffCount"/>).
    /// </summary>
    public void Backoff()
    {
        if (BackoffCount < int.MaxValue)
        {
            BackoffCount++;
        }
    }

    /// <summary>
    /// Raises an RTO below <paramref name="rto"/> to it, clearing the backoff (RFC 6298 5.7: 3 s
    /// once data transmission begins after a SYN timed out). A larger RTO is left as it is.
    /// </summary>
    public void RaiseTo(TimeSpan rto)
    {
        if (Rto < rto)
        {
            _baseRto = Clamp(rto);
            BackoffCount = 0;
        }
    }

    private TimeSpan Clamp(TimeSpan rto) => rto < _minRto ? _minRto : rto > _maxRto ? _maxRto : rto;
}
