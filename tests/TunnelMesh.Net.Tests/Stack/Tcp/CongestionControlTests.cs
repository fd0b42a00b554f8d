using TunnelMesh.Net.Stack.Tcp;

namespace TunnelMesh.Net.Tests.Stack.Tcp;

public class CongestionControlTests
{
    private const int Mss = 1000;
    private static readonly TimeSpan Rtt = TimeSpan.FromMilliseconds(100);

    public static TheoryData<string> Algorithms => new() { "newreno", "cubic" };

    private static CongestionController Create(string algorithm, int mss = Mss) =>
        algorithm == "cubic" ? new CubicController(mss) : new NewRenoController(mss);

    /// <summary>
    /// A sender that always has data: one round trip acknowledges the window that was in flight at its
    /// start, in ACKs of <paramref name="segmentsPerAck"/> segments spread evenly over the RTT; after each
    /// ACK the sender refills the window, so the flight before an ACK is the window.
    /// </summary>
    private sealed class Sender(CongestionController cc, TimeSpan start, TimeSpan rtt)
    {
        public TimeSpan Now { get; private set; } = start;

        public void Round(int segmentsPerAck = 1)
        {
            long window = cc.CongestionWindow;
            long chunk = (long)segmentsPerAck * cc.Mss;
            int acks = (int)((window + chunk - 1) / chunk);
            long left = window;
            for (int i = 1; i <= acks; i++)
            {
                long acked = Math.Min(chunk, left);
                left -= acked;
                var at = Now + (rtt * i / acks);
                cc.OnAck(acked, cc.CongestionWindow - acked, at, rtt, rtt);
            }

            Now += rtt;
        }

        public void Rounds(int count)
        {
            for (int i = 0; i < count; i++)
            {
                Round();
            }
        }

        /// <summary>Slow start (no threshold yet) until the window reaches <paramref name="bytes"/>, then one loss and recovery.</summary>
        public void GrowThenLose(long bytes)
        {
            while (cc.CongestionWindow < bytes)
            {
                Round();
            }

            cc.OnCongestionEvent(cc.CongestionWindow, Now);
            cc.OnRecoveryExit(Now);
        }
    }

    [Theory]
    [InlineData(536, 5360)] // min(5360, max(1072, 14600))
    [InlineData(1460, 14600)]
    [InlineData(1000, 10000)]
    [InlineData(9000, 18000)] // two segments
    public void Initial_window_follows_rfc_6928(int mss, long expected)
    {
        Assert.Equal(expected, CongestionController.InitialWindowFor(mss));
        foreach (var algorithm in new[] { "newreno", "cubic" })
        {
            var cc = Create(algorithm, mss);
            Assert.Equal(expected, cc.CongestionWindow);
            Assert.Equal(long.MaxValue, cc.SlowStartThreshold);
            Assert.True(cc.InSlowStart);
        }
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Slow_start_doubles_the_window_every_round_trip(string algorithm)
    {
        foreach (int segmentsPerAck in new[] { 1, 2 })
        {
            var cc = Create(algorithm);
            var sender = new Sender(cc, TimeSpan.Zero, Rtt);
            for (int round = 0; round < 8; round++)
            {
                long before = cc.CongestionWindow;
                sender.Round(segmentsPerAck);
                Assert.Equal(2 * before, cc.CongestionWindow);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Slow_start_counts_a_stretch_ack_up_to_its_limit(string algorithm)
    {
        // A receiver that ACKs once per received batch covers up to MaxAckStretchSegments per ACK;
        // slow start counts them all (as Linux does), and no more than that per ACK (RFC 3465's L).
        var cc = Create(algorithm);
        long before = cc.CongestionWindow;
        cc.OnAck(8 * Mss, cc.CongestionWindow, Rtt, Rtt, Rtt); // a stretch ACK of eight segments
        Assert.Equal(before + (8 * Mss), cc.CongestionWindow);
        cc.OnAck(300, cc.CongestionWindow, Rtt, Rtt, Rtt);
        Assert.Equal(before + (8 * Mss) + 300, cc.CongestionWindow);
        before = cc.CongestionWindow;
        cc.OnAck(40 * Mss, cc.CongestionWindow, Rtt, Rtt, Rtt); // more than one ACK may count
        Assert.Equal(before + (TcpConstants.MaxAckStretchSegments * Mss), cc.CongestionWindow);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Slow_start_stops_at_the_threshold(string algorithm)
    {
        var cc = Create(algorithm);
        var sender = new Sender(cc, TimeSpan.Zero, Rtt);
        sender.GrowThenLose(64 * Mss);
        cc.OnRetransmissionTimeout(cc.CongestionWindow, sender.Now);
        long threshold = cc.SlowStartThreshold;
        while (cc.InSlowStart)
        {
            long before = cc.CongestionWindow;
            sender.Round();
            Assert.True(cc.CongestionWindow <= Math.Max(2 * before, threshold + (2 * Mss)));
        }

        Assert.InRange(cc.CongestionWindow, threshold, threshold + (3 * Mss));
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Application_limited_acks_do_not_grow_the_window(string algorithm)
    {
        var cc = Create(algorithm);
        long window = cc.CongestionWindow; // 10 000
        // Flight before the ACK = 4 999 bytes < window / 2: application-limited.
        cc.OnAck(1000, 3999, Rtt, Rtt, Rtt);
        Assert.Equal(window, cc.CongestionWindow);
        // Flight before the ACK = exactly half the window: window-limited, grows.
        cc.OnAck(1000, 4000, Rtt, Rtt, Rtt);
        Assert.Equal(window + 1000, cc.CongestionWindow);

        // In congestion avoidance too.
        var sender = new Sender(cc, Rtt, Rtt);
        sender.GrowThenLose(40 * Mss);
        sender.Rounds(3);
        window = cc.CongestionWindow;
        for (int i = 0; i < 1000; i++)
        {
            cc.OnAck(Mss, 0, sender.Now + TimeSpan.FromMilliseconds(i), Rtt, Rtt);
        }

        Assert.Equal(window, cc.CongestionWindow);
    }

    [Fact]
    public void NewReno_congestion_avoidance_adds_one_mss_per_round_trip()
    {
        var cc = new NewRenoController(Mss);
        var sender = new Sender(cc, TimeSpan.Zero, Rtt);
        sender.GrowThenLose(80 * Mss);
        Assert.False(cc.InSlowStart);
        long start = cc.CongestionWindow;
        for (int round = 0; round < 30; round++)
        {
            long before = cc.CongestionWindow;
            sender.Round(round % 2 + 1); // with and without delayed ACKs
            Assert.InRange(cc.CongestionWindow - before, 0, Mss);
        }

        Assert.InRange(cc.CongestionWindow - start, 29 * Mss, 30 * Mss);
    }

    [Fact]
    public void NewReno_halves_on_loss_with_a_floor_of_two_segments()
    {
        var cc = new NewRenoController(Mss);
        var sender = new Sender(cc, TimeSpan.Zero, Rtt);
        sender.Rounds(3); // 80 segments
        Assert.Equal(80 * Mss, cc.CongestionWindow);
        cc.OnCongestionEvent(70 * Mss, sender.Now); // FlightSize, not cwnd, counts
        Assert.Equal(35 * Mss, cc.SlowStartThreshold);
        Assert.Equal(35 * Mss, cc.CongestionWindow);
        cc.OnRecoveryExit(sender.Now);
        Assert.Equal(35 * Mss, cc.CongestionWindow);
        Assert.False(cc.InSlowStart);

        cc.OnCongestionEvent(3 * Mss, sender.Now);
        Assert.Equal(2 * Mss, cc.SlowStartThreshold);
        Assert.Equal(2 * Mss, cc.CongestionWindow);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Retransmission_timeout_drops_to_one_segment_and_a_repeat_keeps_ssthresh(string algorithm)
    {
        var cc = Create(algorithm);
        var sender = new Sender(cc, TimeSpan.Zero, Rtt);
        sender.Rounds(3); // 80 segments
        cc.OnRetransmissionTimeout(80 * Mss, sender.Now);
        long expected = algorithm == "cubic" ? 56 * Mss : 40 * Mss;
        Assert.Equal(Mss, cc.CongestionWindow);
        Assert.Equal(expected, cc.SlowStartThreshold);
        cc.OnRetransmissionTimeout(80 * Mss, sender.Now + TimeSpan.FromSeconds(1)); // same segment again
        Assert.Equal(Mss, cc.CongestionWindow);
        Assert.Equal(expected, cc.SlowStartThreshold);

        sender.Round(); // new data acknowledged: the next timeout reduces again
        Assert.Equal(2 * Mss, cc.CongestionWindow);
        cc.OnRetransmissionTimeout(10 * Mss, sender.Now);
        Assert.Equal(Mss, cc.CongestionWindow);
        Assert.Equal(algorithm == "cubic" ? 7 * Mss : 5 * Mss, cc.SlowStartThreshold);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Recovery_exit_deflates_to_ssthresh_but_not_after_a_timeout(string algorithm)
    {
        var cc = Create(algorithm);
        var sender = new Sender(cc, TimeSpan.Zero, Rtt);
        sender.Rounds(3);
        cc.OnCongestionEvent(80 * Mss, sender.Now);
        long threshold = cc.SlowStartThreshold;
        cc.OnRecoveryExit(sender.Now);
        Assert.Equal(threshold, cc.CongestionWindow);

        cc.OnCongestionEvent(cc.CongestionWindow, sender.Now);
        cc.OnRetransmissionTimeout(cc.CongestionWindow, sender.Now);
        sender.Round();
        long window = cc.CongestionWindow;
        cc.OnRecoveryExit(sender.Now); // the timeout ended that recovery already
        Assert.Equal(window, cc.CongestionWindow);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Idle_longer_than_the_rto_restarts_from_the_initial_window(string algorithm)
    {
        var cc = Create(algorithm);
        var sender = new Sender(cc, TimeSpan.Zero, Rtt);
        sender.Rounds(3);
        long threshold = cc.SlowStartThreshold;
        cc.OnIdle(TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(300));
        Assert.Equal(80 * Mss, cc.CongestionWindow);
        cc.OnIdle(TimeSpan.FromMilliseconds(301), TimeSpan.FromMilliseconds(300));
        Assert.Equal(cc.InitialWindow, cc.CongestionWindow);
        Assert.Equal(threshold, cc.SlowStartThreshold);

        cc.OnRetransmissionTimeout(cc.CongestionWindow, sender.Now);
        cc.OnIdle(TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(300)); // below the initial window: kept
        Assert.Equal(Mss, cc.CongestionWindow);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Mss_change_before_any_traffic_resets_the_initial_window(string algorithm)
    {
        var cc = Create(algorithm, 536);
        cc.Mss = 1380;
        Assert.Equal(13_800, cc.CongestionWindow);
        Assert.Equal(1380, cc.Mss);

        var later = Create(algorithm, 1460);
        later.OnAck(1460, 14_600, Rtt, Rtt, Rtt);
        later.Mss = 1200;
        Assert.Equal(14_600 + 1460, later.CongestionWindow); // bytes kept
        later.OnAck(50_000, 14_600, Rtt, Rtt, Rtt);
        Assert.Equal(14_600 + 1460 + (TcpConstants.MaxAckStretchSegments * 1200), later.CongestionWindow); // the per-ACK limit in new segments

        var small = Create(algorithm, 536);
        small.OnRetransmissionTimeout(2000, Rtt);
        small.Mss = 1460;
        Assert.Equal(1460, small.CongestionWindow);
        Assert.Equal(2920, small.SlowStartThreshold);
        Assert.Throws<ArgumentOutOfRangeException>(() => small.Mss = 0);
    }

    private static double Segments(long bytes) => (double)bytes / Mss;

    /// <summary>W_cubic(t) of RFC 9438 Figure 1, in segments.</summary>
    private static double ReferenceCubic(double t, double wMax, double cwndEpoch)
    {
        double k = Math.Cbrt((wMax - cwndEpoch) / 0.4);
        return (0.4 * Math.Pow(t - k, 3)) + wMax;
    }

    [Fact]
    public void Cubic_reduces_to_beta_times_w_max_on_loss()
    {
        var cc = new CubicController(Mss);
        var sender = new Sender(cc, TimeSpan.Zero, Rtt);
        sender.Rounds(7); // 1280 segments
        long wMax = cc.CongestionWindow;
        Assert.Equal(1280 * Mss, wMax);
        cc.OnCongestionEvent(wMax, sender.Now);
        Assert.Equal(896 * Mss, cc.CongestionWindow);
        Assert.Equal(896 * Mss, cc.SlowStartThreshold);
        Assert.Equal(wMax, cc.MaxWindow);
    }

    [Fact]
    public void Cubic_follows_the_cubic_curve_concave_then_convex()
    {
        var cc = new CubicController(Mss);
        var sender = new Sender(cc, TimeSpan.Zero, Rtt);
        sender.GrowThenLose(1280 * Mss);
        double wMax = 1280;
        double epochWindow = Segments(cc.CongestionWindow); // 896
        double k = Math.Cbrt(wMax * (1 - CubicController.Beta) / CubicController.C);
        Assert.Equal(k, Math.Cbrt((wMax - epochWindow) / 0.4), 6);

        var growth = new List<double>();
        double previous = epochWindow;
        int rounds = (int)(1.6 * k / Rtt.TotalSeconds);
        for (int round = 0; round < rounds; round++)
        {
            sender.Round();
            double t = (sender.Now - cc.EpochStart!.Value).TotalSeconds;
            double cwnd = Segments(cc.CongestionWindow);
            // The window tracks the curve one round trip ahead, approached over the round: within 2 % of W_max.
            Assert.InRange(cwnd, ReferenceCubic(t, wMax, epochWindow) - (0.02 * wMax), ReferenceCubic(t + Rtt.TotalSeconds, wMax, epochWindow) + 1);
            Assert.True(cwnd >= previous && cwnd <= 1.5 * previous);
            growth.Add(cwnd - previous);
            previous = cwnd;
        }

        Assert.InRange(cc.TimeToMaxWindow!.Value.TotalSeconds, k - 0.001, k + 0.001);

        // Around t = K the window is back at W_max (the plateau).
        int kRound = (int)(k / Rtt.TotalSeconds);
        double atK = epochWindow + growth.Take(kRound).Sum();
        Assert.InRange(atK, 0.98 * wMax, 1.01 * wMax);

        // Concave before K: the per-round growth shrinks (compare early with late, skipping the first rounds).
        var beforeK = growth.Skip(2).Take(kRound - 6).ToArray();
        Assert.True(beforeK[0] > 4 * beforeK[^1], $"early {beforeK[0]}, late {beforeK[^1]}");
        Assert.True(beforeK.Zip(beforeK.Skip(5)).All(p => p.Second <= p.First + 0.5));
        // Convex after K: it grows again.
        var afterK = growth.Skip(kRound + 4).ToArray();
        Assert.True(afterK[^1] > 4 * afterK[0], $"early {afterK[0]}, late {afterK[^1]}");
        Assert.True(afterK.Zip(afterK.Skip(5)).All(p => p.Second >= p.First - 0.5));
        Assert.True(previous > 1.05 * wMax); // W_cubic(1.6 K) ≈ 1.064 W_max
    }

    [Fact]
    public void Cubic_stays_in_the_reno_friendly_region_at_a_small_bdp()
    {
        // RTT 1 ms, W_max 20 segments: the cubic curve needs K ≈ 2.5 s = 2 500 round trips to climb back,
        // while Reno adds α_cubic ≈ 0.53 segment per round trip until cwnd_prior, then one.
        var rtt = TimeSpan.FromMilliseconds(1);
        var cc = new CubicController(Mss);
        var sender = new Sender(cc, TimeSpan.Zero, rtt);
        sender.GrowThenLose(20 * Mss);
        Assert.Equal(14 * Mss, cc.CongestionWindow);

        var perRound = new List<double>();
        for (int round = 0; round < 60; round++)
        {
            double before = Segments(cc.CongestionWindow);
            sender.Round();
            double t = (sender.Now - cc.EpochStart!.Value).TotalSeconds;
            double cwnd = Segments(cc.CongestionWindow);
            perRound.Add(cwnd - before);
            Assert.True(cwnd >= cc.CubicWindow(t) / Mss, $"round {round}: cwnd {cwnd} below W_cubic {cc.CubicWindow(t) / Mss}");
            Assert.InRange(cwnd - (cc.RenoEstimate / Mss), -0.01, 0.01); // cwnd = W_est
        }

        // α_cubic ≈ 0.53 per RTT while W_est < cwnd_prior (20 segments, reached after about 11 rounds), then 1.
        Assert.All(perRound.Take(9), g => Assert.InRange(g, 0.4, 0.6));
        Assert.All(perRound.Skip(15), g => Assert.InRange(g, 0.9, 1.05));
        Assert.InRange(Segments(cc.CongestionWindow), 60, 70);
    }

    [Fact]
    public void Cubic_fast_convergence_lowers_w_max_when_loss_comes_before_regaining_it()
    {
        var cc = new CubicController(Mss);
        var sender = new Sender(cc, TimeSpan.Zero, Rtt);
        sender.GrowThenLose(1280 * Mss);
        Assert.Equal(1280 * Mss, cc.MaxWindow);
        sender.Rounds(10); // still below W_max
        long window = cc.CongestionWindow;
        Assert.InRange(window, 900 * Mss, 1279 * Mss);
        cc.OnCongestionEvent(window, sender.Now);
        Assert.Equal(window * (1 + 0.7) / 2, cc.MaxWindow, 6);
        Assert.Equal((long)Math.Round(0.7 * window), cc.CongestionWindow);
        cc.OnRecoveryExit(sender.Now);

        // Above W_max at the next loss: W_max is the window itself.
        while (cc.CongestionWindow <= cc.MaxWindow)
        {
            sender.Round();
        }

        window = cc.CongestionWindow;
        cc.OnCongestionEvent(window, sender.Now);
        Assert.Equal(window, cc.MaxWindow);
    }

    [Fact]
    public void Cubic_after_a_timeout_starts_its_curve_at_the_stage_window_with_k_zero()
    {
        var cc = new CubicController(Mss);
        var sender = new Sender(cc, TimeSpan.Zero, Rtt);
        sender.Rounds(6); // 640 segments
        cc.OnRetransmissionTimeout(640 * Mss, sender.Now);
        Assert.Equal(448 * Mss, cc.SlowStartThreshold);
        Assert.Null(cc.EpochStart);
        while (cc.InSlowStart)
        {
            sender.Round();
        }

        sender.Round();
        Assert.Equal(TimeSpan.Zero, cc.TimeToMaxWindow);
        Assert.Equal(448 * Mss, cc.MaxWindow, 0.0);
        // Convex from the start (once the curve outgrows the Reno-friendly estimate): late rounds add far more.
        var growth = new List<long>();
        for (int i = 0; i < 80; i++)
        {
            long before = cc.CongestionWindow;
            sender.Round();
            growth.Add(cc.CongestionWindow - before);
        }

        Assert.True(growth[^1] > 3 * growth[5]);
    }

    [Fact]
    public void Cubic_leaves_application_limited_time_out_of_the_curve()
    {
        var busy = new CubicController(Mss);
        var paused = new CubicController(Mss);
        var a = new Sender(busy, TimeSpan.Zero, Rtt);
        var b = new Sender(paused, TimeSpan.Zero, Rtt);
        a.GrowThenLose(1280 * Mss);
        b.GrowThenLose(1280 * Mss);
        a.Rounds(40);
        b.Rounds(20);

        // Ten seconds of application-limited ACKs (a trickle of one segment in flight), then a short idle.
        var start = paused.EpochStart!.Value;
        long window = paused.CongestionWindow;
        var pauseStart = b.Now;
        for (int i = 1; i <= 100; i++)
        {
            paused.OnAck(Mss, 0, pauseStart + TimeSpan.FromMilliseconds(100 * i), Rtt, Rtt);
        }

        Assert.Equal(window, paused.CongestionWindow);
        Assert.Equal(start + TimeSpan.FromSeconds(10), paused.EpochStart!.Value);
        paused.OnIdle(TimeSpan.FromMilliseconds(150), TimeSpan.FromMilliseconds(300));
        Assert.Equal(start + TimeSpan.FromSeconds(10.15), paused.EpochStart!.Value);

        var resumed = new Sender(paused, pauseStart + TimeSpan.FromSeconds(10.15), Rtt);
        resumed.Rounds(20);
        // Same curve as the sender that never paused; without the shift the window would have jumped
        // (t past K, at the 1.5x clamp every round).
        Assert.InRange(paused.CongestionWindow, 0.99 * busy.CongestionWindow, 1.01 * busy.CongestionWindow);
    }
}
