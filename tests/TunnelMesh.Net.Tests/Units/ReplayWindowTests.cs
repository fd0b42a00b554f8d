using TunnelMesh.Net.Tests.Support;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.Units;

public class ReplayWindowTests
{
    private const ulong W = ReplayWindow.WindowSize;

    [Fact]
    public void Window_is_at_least_2048_wide() => Assert.True(W >= 2048);

    [Fact]
    public void Accepts_each_counter_once()
    {
        var window = new ReplayWindow();
        for (ulong c = 0; c < 20_000; c++)
        {
            Assert.True(window.TryAccept(c));
            Assert.False(window.TryAccept(c));
        }
    }

    [Fact]
    public void Accepts_out_of_order_inside_the_window_and_rejects_older()
    {
        var window = new ReplayWindow();
        Assert.True(window.TryAccept(10_000));
        Assert.True(window.TryAccept(10_000 - W));       // the oldest still inside
        Assert.False(window.TryAccept(10_000 - W - 1));  // just outside
        Assert.True(window.TryAccept(9_999));
        Assert.False(window.TryAccept(9_999));
        Assert.True(window.TryAccept(0 + 10_001));
        Assert.False(window.TryAccept(10_000 - W));      // still seen
    }

    [Fact]
    public void A_jump_beyond_the_ring_forgets_everything_behind()
    {
        var window = new ReplayWindow();
        for (ulong c = 0; c < 100; c++)
        {
            window.TryAccept(c);
        }

        Assert.True(window.TryAccept(1_000_000));
        Assert.False(window.TryAccept(99));
        Assert.True(window.TryAccept(1_000_000 - W));
        Assert.True(window.TryAccept(1_000_000 - 1));
    }

    [Fact]
    public void Rejects_counters_at_or_above_the_message_limit()
    {
        Assert.Equal(ulong.MaxValue - 8192, ReplayWindow.RejectAfterMessages); // 2^64 - 2^13 - 1
        var window = new ReplayWindow();
        Assert.False(window.TryAccept(ReplayWindow.RejectAfterMessages));
        Assert.False(window.TryAccept(ulong.MaxValue));
        Assert.True(window.TryAccept(ReplayWindow.RejectAfterMessages - 1));
        Assert.False(window.TryAccept(ReplayWindow.RejectAfterMessages - 1));
        Assert.True(window.TryAccept(ReplayWindow.RejectAfterMessages - 2));
    }

    [Fact]
    public void Reset_forgets_everything()
    {
        var window = new ReplayWindow();
        Assert.True(window.TryAccept(0));
        Assert.True(window.TryAccept(50_000));
        window.Reset();
        Assert.Equal(0UL, window.Highest);
        Assert.True(window.TryAccept(0));
        Assert.True(window.TryAccept(5));
        Assert.True(window.TryAccept(50_000));
    }

    [Fact]
    public void Does_not_allocate()
    {
        var window = new ReplayWindow();
        Allocations.AssertNonePerCall(100_000, i => window.TryAccept((ulong)i * 3 % 70_001), "replay window checks");
    }

    /// <summary>The model: a set of seen counters and a cutoff of highest − window size.</summary>
    private sealed class Model
    {
        private readonly HashSet<ulong> _seen = new();

        public ulong Highest { get; private set; }

        public bool Accept(ulong counter)
        {
            if (counter >= ReplayWindow.RejectAfterMessages || (counter < Highest && Highest - counter > W) || !_seen.Add(counter))
            {
                return false;
            }

            Highest = Math.Max(Highest, counter);
            return true;
        }
    }

    /// <summary>One step: how to pick the next counter relative to the model's state.</summary>
    public readonly record struct Move(int Kind, int Amount);

    private static ulong Pick(Move step, ulong highest, List<ulong> history)
    {
        ulong amount = (ulong)step.Amount;
        return step.Kind switch
        {
            0 => highest + (amount % 200),                                // just ahead (in-order traffic)
            1 => highest - Math.Min(highest, amount % 300),               // a little behind (reordering)
            2 => highest + (amount % 40_000),                             // a big jump (wraps the ring)
            3 => highest - Math.Min(highest, W - 3 + (amount % 7)),       // around the window's edge
            4 => history.Count == 0 ? 0 : history[step.Amount % history.Count], // an exact replay
            5 => ReplayWindow.RejectAfterMessages - 20_000 + (amount % 20_010), // near the message limit
            _ => highest - Math.Min(highest, amount % (2 * W)),           // anywhere in or behind the window
        };
    }

    [Property(MaxTest = 300, EndSize = 2000)]
    public Property Agrees_with_a_set_model()
    {
        var steps = Gen.Zip(Gen.Frequency((6, Gen.Choose(0, 0)), (4, Gen.Choose(1, 1)), (2, Gen.Choose(2, 2)), (2, Gen.Choose(3, 3)),
                                          (2, Gen.Choose(4, 4)), (1, Gen.Choose(5, 5)), (3, Gen.Choose(6, 6))),
                            Gen.Choose(0, int.MaxValue))
            .Select(t => new Move(t.Item1, t.Item2))
            .ListOf()
            .Select(l => l.ToArray());

        var property = Prop.ForAll(Arb.From(steps), sequence =>
        {
            var window = new ReplayWindow();
            var model = new Model();
            var history = new List<ulong>();
            foreach (var step in sequence)
            {
                ulong counter = Pick(step, model.Highest, history);
                history.Add(counter);
                if (window.TryAccept(counter) != model.Accept(counter) || window.Highest != model.Highest)
                {
                    return false;
                }
            }

            return true;
        });
        return property;
    }
}
