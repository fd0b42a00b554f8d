using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Stack.Tcp;

namespace TunnelMesh.Net.Tests.Stack.Tcp;

public class RttEstimatorTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    private static RttEstimator Linux() => new(Second, Ms(200), TimeSpan.FromSeconds(60));

    [Fact]
    public void Before_any_sample_the_initial_rto_applies()
    {
        var rtt = Linux();
        Assert.False(rtt.HasSamples);
        Assert.Null(rtt.SmoothedRtt);
        Assert.Null(rtt.MinRtt);
        Assert.Equal(TimeSpan.Zero, rtt.RttVariance);
        Assert.Equal(Second, rtt.Rto);
        Assert.Equal(0, rtt.BackoffCount);
    }

    [Fact]
    public void First_sample_sets_srtt_to_r_and_rttvar_to_half()
    {
        var rtt = Linux();
        rtt.AddSample(Ms(100));
        Assert.True(rtt.HasSamples);
        Assert.Equal(Ms(100), rtt.SmoothedRtt);
        Assert.Equal(Ms(50), rtt.RttVariance);
        Assert.Equal(Ms(300), rtt.Rto); // 100 + 4 * 50
        Assert.Equal(Ms(100), rtt.MinRtt);
    }

    [Fact]
    public void Later_samples_update_rttvar_with_the_old_srtt_then_srtt()
    {
        var rtt = Linux();
        rtt.AddSample(Ms(100));
        rtt.AddSample(Ms(200));
        // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5.
        Assert.Equal(Ms(62.5), rtt.RttVariance);
        Assert.Equal(Ms(112.5), rtt.SmoothedRtt);
        Assert.Equal(Ms(362.5), rtt.Rto);
        rtt.AddSample(Ms(40));
        // RTTVAR = 3/4 * 62.5 + 1/4 * 72.5 = 65; SRTT = 7/8 * 112.5 + 1/8 * 40 = 103.4375.
        Assert.Equal(Ms(65), rtt.RttVariance);
        Assert.Equal(Ms(103.4375), rtt.SmoothedRtt);
        Assert.Equal(Ms(363.4375), rtt.Rto);
        Assert.Equal(Ms(40), rtt.MinRtt);
    }

    [Property]
    public Property Agrees_with_the_rfc_formulas_on_random_sample_sequences()
    {
        var samples = Gen.Choose(0, 3_000_000).Select(us => TimeSpan.FromTicks(us * 10L)).NonEmptyListOf().Select(l => l.ToArray());
        return Prop.ForAll(samples.ToArbitrary(), sequence =>
        {
            var min = Ms(1);
            var max = TimeSpan.FromSeconds(2);
            var rtt = new RttEstimator(Second, min, max);
            double srtt = 0, rttvar = 0, minRtt = double.MaxValue;
            for (int i = 0; i < sequence.Length; i++)
            {
                double r = sequence[i].Ticks;
                if (i == 0)
                {
                    srtt = r;
                    rttvar = r / 2;
                }
                else
                {
                    rttvar = (0.75 * rttvar) + (0.25 * Math.Abs(srtt - r));
                    srtt = (0.875 * srtt) + (0.125 * r);
                }

                minRtt = Math.Min(minRtt, r);
                rtt.AddSample(sequence[i]);
            }

            double rto = Math.Clamp(srtt + Math.Max(RttEstimator.ClockGranularity.Ticks, 4 * rttvar), min.Ticks, max.Ticks);
            // The estimator truncates to whole ticks at each step; the errors stay within a few ticks.
            return Math.Abs(rtt.SmoothedRtt!.Value.Ticks - srtt) <= 8
                && Math.Abs(rtt.RttVariance.Ticks - rttvar) <= 8
                && Math.Abs(rtt.Rto.Ticks - rto) <= 40
                && rtt.MinRtt!.Value.Ticks == (long)minRtt;
        });
    }

    [Fact]
    public void Rto_is_clamped_to_the_minimum_and_maximum()
    {
        var rtt = Linux();
        rtt.AddSample(Ms(1));
        Assert.Equal(Ms(200), rtt.Rto); // 1 + 4 * 0.5 = 3 ms, raised to the minimum
        var slow = Linux();
        slow.AddSample(TimeSpan.FromSeconds(30));
        Assert.Equal(TimeSpan.FromSeconds(60), slow.Rto); // 30 + 4 * 15 = 90 s, capped
    }

    [Fact]
    public void Clock_granularity_bounds_the_variance_term()
    {
        var rtt = new RttEstimator(Second, TimeSpan.FromTicks(1), TimeSpan.FromSeconds(60));
        for (int i = 0; i < 200; i++)
        {
            rtt.AddSample(Ms(10)); // constant samples: RTTVAR decays towards zero
        }

        Assert.True(rtt.RttVariance < TimeSpan.FromTicks(100));
        Assert.Equal(Ms(11), rtt.Rto); // SRTT + G, not SRTT + 4 * RTTVAR
    }

    [Fact]
    public void Backoff_doubles_up_to_the_maximum_and_a_sample_resets_it()
    {
        var rtt = Linux();
        rtt.AddSample(Ms(100));
        var expected = Ms(300);
        for (int i = 1; i <= 100; i++)
        {
            rtt.Backoff();
            expected = expected * 2 > TimeSpan.FromSeconds(60) ? TimeSpan.FromSeconds(60) : expected * 2;
            Assert.Equal(expected, rtt.Rto);
            Assert.Equal(i, rtt.BackoffCount);
        }

        rtt.AddSample(Ms(100));
        Assert.Equal(0, rtt.BackoffCount);
        Assert.Equal(Ms(100) + TimeSpan.FromTicks((Ms(50).Ticks * 3 / 4) * 4), rtt.Rto); // RTTVAR = 37.5 ms
    }

    [Fact]
    public void Backoff_applies_to_the_initial_rto_too()
    {
        var rtt = Linux();
        rtt.Backoff();
        Assert.Equal(TimeSpan.FromSeconds(2), rtt.Rto);
        rtt.Backoff();
        Assert.Equal(TimeSpan.FromSeconds(4), rtt.Rto);
    }

    [Fact]
    public void Negative_samples_are_ignored_and_huge_ones_capped()
    {
        var rtt = Linux();
        rtt.AddSample(TimeSpan.FromTicks(-1));
        Assert.False(rtt.HasSamples);
        rtt.AddSample(Ms(100));
        rtt.Backoff();
        rtt.AddSample(Ms(-5));
        Assert.Equal(Ms(100), rtt.SmoothedRtt);
        Assert.Equal(1, rtt.BackoffCount);
        rtt.AddSample(TimeSpan.MaxValue);
        Assert.Equal(TimeSpan.FromTicks((Ms(700).Ticks + RttEstimator.MaxSample.Ticks) / 8), rtt.SmoothedRtt);
        Assert.Equal(TimeSpan.FromSeconds(60), rtt.Rto);
    }

    [Fact]
    public void Rejects_inconsistent_bounds()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RttEstimator(Second, TimeSpan.Zero, Second));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RttEstimator(Second, Second, Ms(500)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RttEstimator(TimeSpan.Zero, Ms(200), Second));
    }

    [Fact]
    public void Initial_rto_outside_the_bounds_is_clamped()
    {
        Assert.Equal(Ms(200), new RttEstimator(Ms(1), Ms(200), Second).Rto);
        Assert.Equal(Second, new RttEstimator(TimeSpan.FromSeconds(3), Ms(200), Second).Rto);
    }

    [Fact]
    public void Raise_to_lifts_only_a_smaller_rto_and_clears_the_backoff()
    {
        var rtt = new RttEstimator(Second, Ms(200), TimeSpan.FromSeconds(60));
        rtt.Backoff(); // 2 s
        rtt.RaiseTo(TimeSpan.FromSeconds(3));
        Assert.Equal(TimeSpan.FromSeconds(3), rtt.Rto);
        Assert.Equal(0, rtt.BackoffCount);
        Assert.False(rtt.HasSamples);
        rtt.Backoff(); // 6 s
        rtt.RaiseTo(TimeSpan.FromSeconds(3));
        Assert.Equal(TimeSpan.FromSeconds(6), rtt.Rto);
        Assert.Equal(1, rtt.BackoffCount);
        rtt.AddSample(Ms(100)); // a sample replaces it as usual
        Assert.Equal(Ms(300), rtt.Rto);
    }
}
