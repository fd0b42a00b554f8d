using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Stack.Tcp;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Stack.Tcp;

public class SackScoreboardTests
{
    private const int Mss = 10;
    private const int Space = 200;

    private static SackBlock Block(SeqNumber baseSeq, int left, int right) => new((baseSeq + left).Value, (baseSeq + right).Value);

    [Fact]
    public void Merges_counts_new_bytes_and_drops_what_the_ack_covers()
    {
        var una = new SeqNumber(uint.MaxValue - 50); // across the wrap
        var nxt = una + 1000;
        var board = new SackScoreboard(8);
        Assert.True(board.IsEmpty);
        Assert.Equal(100, board.Update(una, [Block(una, 100, 200)], nxt));
        Assert.Equal(50, board.Update(una, [Block(una, 150, 250)], nxt));
        Assert.Equal(100, board.Update(una, [Block(una, 300, 400)], nxt));
        Assert.Equal(0, board.Update(una, [Block(una, 300, 400)], nxt)); // a repeat adds nothing
        Assert.Equal(2, board.RangeCount);
        Assert.Equal(50, board.Update(una, [Block(una, 250, 300)], nxt)); // fills the gap: one range
        Assert.Equal(1, board.RangeCount);
        Assert.Equal(300, board.SackedBytes);
        Assert.Equal(una + 400, board.HighestSacked);

        // The cumulative ACK moves into the range: the part below it is gone.
        Assert.Equal(0, board.Update(una + 150, [], nxt));
        Assert.Equal(250, board.SackedBytes);
        Assert.Equal(0, board.Update(una + 400, [], nxt));
        Assert.True(board.IsEmpty);
    }

    [Fact]
    public void Ignores_dsack_inverted_and_beyond_snd_nxt_blocks()
    {
        var una = new SeqNumber(1000);
        var board = new SackScoreboard();
        Assert.Equal(0, board.Update(una, [new SackBlock(900, 1000)], una + 100)); // D-SACK below the ACK
        Assert.Equal(0, board.Update(una, [new SackBlock(1050, 1040)], una + 100)); // inverted
        Assert.Equal(0, board.Update(una, [new SackBlock(1200, 1300)], una + 100)); // never sent
        Assert.Equal(50, board.Update(una, [new SackBlock(1050, 5000)], una + 100)); // clipped to SND.NXT
        Assert.Equal(una + 100, board.HighestSacked);
    }

    [Fact]
    public void Keeps_the_lowest_ranges_when_full()
    {
        var una = new SeqNumber(0);
        var board = new SackScoreboard(2);
        board.Update(una, [Block(una, 40, 50)], una + 1000);
        board.Update(una, [Block(una, 20, 30)], una + 1000);
        board.Update(una, [Block(una, 60, 70)], una + 1000); // no room, higher than all: forgotten
        board.Update(una, [Block(una, 0 + 5, 10)], una + 1000); // lower: the highest is forgotten
        Assert.Equal(2, board.RangeCount);
        Assert.True(board.IsSacked(una + 5));
        Assert.True(board.IsSacked(una + 25));
        Assert.False(board.IsSacked(una + 45));
    }

    [Fact]
    public void Loss_needs_three_segments_or_three_ranges_above()
    {
        var una = new SeqNumber(5000);
        var board = new SackScoreboard();
        board.Update(una, [Block(una, 10, 30)], una + 100); // 2 segments above the hole [0,10)
        Assert.False(board.IsLost(una, Mss));
        Assert.False(board.TryNextSegment(una, una - 1, Mss, allowNotLost: false, una, out _, out _));
        Assert.True(board.TryNextSegment(una, una - 1, Mss, allowNotLost: true, una, out var start, out int length)); // rule 3
        Assert.Equal((una, 10), (start, length));
        Assert.Equal(100 - 20, board.Pipe(una, una + 100, una - 1, Mss, una));

        board.Update(una, [Block(una, 30, 31)], una + 100); // 21 bytes above: more than 2 * SMSS
        Assert.True(board.IsLost(una, Mss));
        Assert.True(board.TryNextSegment(una, una - 1, Mss, allowNotLost: false, una, out start, out length));
        Assert.Equal((una, 10), (start, length));
        Assert.Equal(100 - 21 - 10, board.Pipe(una, una + 100, una - 1, Mss, una)); // the lost hole left the pipe
        Assert.Equal(100 - 21, board.Pipe(una, una + 100, una + 9, Mss, una)); // and came back when retransmitted
        Assert.False(board.TryNextSegment(una, una + 9, Mss, allowNotLost: false, una, out _, out _));

        var ranges = new SackScoreboard();
        ranges.Update(una, [Block(una, 20, 21), Block(una, 40, 41), Block(una, 60, 61)], una + 100);
        Assert.True(ranges.IsLost(una, Mss)); // three discontiguous ranges above
        Assert.True(ranges.IsLost(una + 19, Mss));
        Assert.False(ranges.IsLost(una + 21, Mss)); // only two above it
    }

    private sealed record Scenario(uint Base, (int Left, int Right)[] Blocks, int HighRxt, int LostBelow);

    private static Gen<Scenario> ScenarioGen { get; } =
        from baseSeq in Gen.Frequency((1, Gen.Choose(0, int.MaxValue).Select(v => (uint)v * 2)), (1, Gen.Choose(0, 400).Select(v => uint.MaxValue - (uint)v)))
        from blocks in Gen.ListOf(from left in Gen.Choose(-20, Space + 20) from size in Gen.Choose(-2, 40) select (left, left + size))
        from highRxt in Gen.Choose(-1, Space)
        from lostBelow in Gen.Frequency((2, Gen.Constant(0)), (1, Gen.Choose(0, Space)))
        select new Scenario(baseSeq, blocks.ToArray(), highRxt, lostBelow);

    [Property]
    public Property Agrees_with_a_byte_model()
    {
        return Prop.ForAll(ScenarioGen.ToArbitrary(), scenario =>
        {
            var una = new SeqNumber(scenario.Base);
            var nxt = una + Space;
            var board = new SackScoreboard(64);
            var sacked = new bool[Space];
            foreach (var (left, right) in scenario.Blocks)
            {
                int newly = 0;
                for (int i = Math.Max(0, left); i < Math.Min(Space, right); i++)
                {
                    newly += sacked[i] ? 0 : 1;
                    sacked[i] = true;
                }

                Assert.Equal(newly, board.Update(una, [Block(una, left, right)], nxt));
            }

            for (int i = 0; i < Space; i++)
            {
                Assert.Equal(sacked[i], board.IsSacked(una + i));
            }

            // RFC 6675 IsLost, byte by byte: more than 2 * SMSS SACKed bytes above, or 3 ranges above.
            bool ModelLost(int seq)
            {
                if (sacked[seq])
                {
                    return false;
                }

                int bytesAbove = 0, rangesAbove = 0;
                for (int j = seq + 1; j < Space; j++)
                {
                    bytesAbove += sacked[j] ? 1 : 0;
                    rangesAbove += sacked[j] && !sacked[j - 1] ? 1 : 0;
                }

                return bytesAbove > 2 * Mss || rangesAbove >= 3;
            }

            // After a timeout everything unSACKed below LostBelow counts as lost as well.
            bool Lost(int seq) => ModelLost(seq) || (!sacked[seq] && seq < scenario.LostBelow);
            var lostBelow = una + scenario.LostBelow;

            int highestSacked = Array.LastIndexOf(sacked, true);
            long pipe = 0;
            for (int i = 0; i < Space; i++)
            {
                Assert.Equal(ModelLost(i), board.IsLost(una + i, Mss));
                if (!sacked[i])
                {
                    pipe += (Lost(i) ? 0 : 1) + (i <= scenario.HighRxt ? 1 : 0);
                }
            }

            var highRxt = una + scenario.HighRxt;
            Assert.Equal(pipe, board.Pipe(una, nxt, highRxt, Mss, lostBelow));

            // NextSeg rule 1: the first lost byte above HighRxt; rule 3: the first unSACKed one below the highest SACKed.
            int rule1 = Enumerable.Range(scenario.HighRxt + 1, Math.Max(0, Space - scenario.HighRxt - 1)).FirstOrDefault(Lost, -1);
            Assert.Equal(rule1 >= 0, board.TryNextSegment(una, highRxt, Mss, false, lostBelow, out var start, out int length));
            if (rule1 >= 0)
            {
                Assert.Equal(una + rule1, start);
                Assert.InRange(length, 1, Mss);
                Assert.All(Enumerable.Range(rule1, length), j => Assert.False(sacked[j]));
            }

            int rule3 = Enumerable.Range(scenario.HighRxt + 1, Math.Max(0, Space - scenario.HighRxt - 1))
                .FirstOrDefault(j => !sacked[j] && (j < highestSacked || Lost(j)), -1);
            Assert.Equal(rule3 >= 0, board.TryNextSegment(una, highRxt, Mss, true, lostBelow, out start, out length));
            if (rule3 >= 0)
            {
                Assert.Equal(una + rule3, start);
                Assert.All(Enumerable.Range(rule3, length), j => Assert.False(sacked[j]));
            }
        });
    }
}
