using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Stack.Tcp;
using TunnelMesh.Net.Tests.Wire;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Stack.Tcp;

public class TcpAssemblerTests
{
    private const int Space = 256;

    /// <summary>One step: add a segment [Offset, Offset + Length), or (Length &lt; 0) remove the front.</summary>
    private sealed record Step(int Offset, int Length);

    private static Gen<Step> StepGen { get; } = Gen.Frequency(
        (8, from offset in Gen.Choose(0, 160) from length in Gen.Choose(0, 24) select new Step(offset, length)),
        (1, from length in Gen.Choose(1, 24) select new Step(0, length)), // in-order data
        (2, Gen.Constant(new Step(0, -1))));

    private static Gen<(int MaxRanges, Step[] Steps)> ScenarioGen { get; } =
        from maxRanges in Gen.Frequency((3, Gen.Choose(1, 6)), (1, Gen.Choose(7, 40)))
        from steps in Gen.ListOf(StepGen).Select(l => l.ToArray())
        select (maxRanges, steps);

    /// <summary>The disjoint, non-touching ranges of received offsets in the model, sorted.</summary>
    private static List<(int Start, int End)> ModelRanges(bool[] received)
    {
        var ranges = new List<(int, int)>();
        for (int i = 0; i < received.Length; i++)
        {
            if (received[i] && (i == 0 || !received[i - 1]))
            {
                int end = i;
                while (end < received.Length && received[end])
                {
                    end++;
                }

                ranges.Add((i, end));
            }
        }

        return ranges;
    }

    private static (int Start, int End)[] SortedRanges(TcpAssembler assembler)
    {
        var ranges = new (int Start, int End)[assembler.RangeCount];
        Assert.Equal(ranges.Length, assembler.GetRanges(ranges));
        Array.Sort(ranges);
        return ranges;
    }

    [Property]
    public Property Agrees_with_a_bool_array_model()
    {
        return Prop.ForAll(ScenarioGen.ToArbitrary(), scenario =>
        {
            var (maxRanges, steps) = scenario;
            var assembler = new TcpAssembler(maxRanges);
            var received = new bool[Space * 2];
            foreach (var step in steps)
            {
                if (step.Length < 0)
                {
                    int prefix = 0;
                    while (received[prefix])
                    {
                        prefix++;
                    }

                    if (assembler.RemoveFront() != prefix)
                    {
                        return false;
                    }

                    Array.Copy(received, prefix, received, 0, received.Length - prefix);
                    Array.Clear(received, received.Length - prefix, prefix);
                }
                else
                {
                    var before = SortedRanges(assembler);
                    var candidate = (bool[])received.Clone();
                    Array.Fill(candidate, true, step.Offset, step.Length);
                    bool fits = ModelRanges(candidate).Count <= maxRanges;
                    bool added = assembler.Add(step.Offset, step.Length);
                    if (added != fits)
                    {
                        return false;
                    }

                    if (added)
                    {
                        received = candidate;
                    }
                    else if (!SortedRanges(assembler).SequenceEqual(before))
                    {
                        return false; // a refused Add changed something
                    }
                }

                var expected = ModelRanges(received);
                if (!SortedRanges(assembler).SequenceEqual(expected)
                    || assembler.RangeCount > maxRanges
                    || assembler.IsEmpty != (expected.Count == 0))
                {
                    return false;
                }
            }

            return true;
        });
    }

    [Fact]
    public void Sack_order_puts_the_most_recent_range_first()
    {
        var assembler = new TcpAssembler();
        Assert.True(assembler.Add(10, 5));
        Assert.True(assembler.Add(30, 5));
        Assert.True(assembler.Add(50, 5));
        Assert.Equal([(50, 55), (30, 35), (10, 15)], Ranges(assembler, 4));

        // Extending the oldest range makes it the most recent.
        Assert.True(assembler.Add(15, 5));
        Assert.Equal([(10, 20), (50, 55), (30, 35)], Ranges(assembler, 4));

        // A duplicate inside a range refreshes it too (the segment that just arrived is in it).
        Assert.True(assembler.Add(31, 2));
        Assert.Equal([(30, 35), (10, 20), (50, 55)], Ranges(assembler, 4));

        // Bridging two ranges merges them into one, the most recent.
        Assert.True(assembler.Add(35, 15));
        Assert.Equal([(30, 55), (10, 20)], Ranges(assembler, 4));

        // A short destination gets the most recent ones.
        Assert.Equal([(30, 55)], Ranges(assembler, 1));
    }

    [Fact]
    public void Remove_front_shifts_the_rest_down()
    {
        var assembler = new TcpAssembler();
        Assert.True(assembler.Add(5, 5));
        Assert.True(assembler.Add(20, 5));
        Assert.Equal(0, assembler.RemoveFront());
        Assert.True(assembler.Add(0, 5)); // fills the gap at the receive point: touches [5, 10)
        Assert.Equal(2, assembler.RangeCount);
        Assert.Equal(10, assembler.RemoveFront());
        Assert.Equal([(10, 15)], Ranges(assembler, 4));
        Assert.Equal(0, assembler.RemoveFront());
        assembler.Clear();
        Assert.True(assembler.IsEmpty);
        Assert.Equal(0, assembler.RemoveFront());
    }

    [Fact]
    public void A_full_assembler_refuses_a_new_range_but_still_merges()
    {
        var assembler = new TcpAssembler(maxRanges: 2);
        Assert.True(assembler.Add(10, 5));
        Assert.True(assembler.Add(30, 5));
        Assert.False(assembler.Add(50, 5));
        Assert.False(assembler.Add(0, 5));
        Assert.Equal([(30, 35), (10, 15)], Ranges(assembler, 4));
        Assert.True(assembler.Add(35, 10)); // touches [30, 35)
        Assert.True(assembler.Add(0, 10));  // touches [10, 15)
        Assert.True(assembler.Add(3, 0));   // empty: nothing to do
        Assert.Equal([(0, 15), (30, 45)], Ranges(assembler, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => assembler.Add(-1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => assembler.Add(1, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => assembler.Add(int.MaxValue, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcpAssembler(0));
    }

    [Fact]
    public void Advance_moves_every_range_down_for_bytes_delivered_without_a_range()
    {
        // What the connection does with in-order data that does not fill the first hole while
        // every slot is taken: it delivers it and moves the ranges down.
        var assembler = new TcpAssembler(maxRanges: 2);
        Assert.True(assembler.Add(10, 5));
        Assert.True(assembler.Add(30, 5));
        Assert.False(assembler.Add(0, 4));
        assembler.Advance(4);
        Assert.Equal([(26, 31), (6, 11)], Ranges(assembler, 4));
        Assert.Equal(0, assembler.RemoveFront());
        Assert.True(assembler.Add(0, 6)); // now touches [6, 11)
        Assert.Equal(11, assembler.RemoveFront());
        Assert.Throws<ArgumentOutOfRangeException>(() => assembler.Advance(16)); // past the start of [15, 20)
        Assert.Throws<ArgumentOutOfRangeException>(() => assembler.Advance(-1));
    }

    private static (int Start, int End)[] Ranges(TcpAssembler assembler, int max)
    {
        var ranges = new (int Start, int End)[max];
        int count = assembler.GetRanges(ranges);
        return ranges[..count];
    }

    /// <summary>A stream, the segments it is cut into (start, length; overlapping, repeated) in arrival order, and when the FIN comes.</summary>
    private sealed record Delivery(uint PeerIss, byte[] Data, (int Start, int Length)[] Segments, int FinAfter);

    private static Gen<Delivery> DeliveryGen { get; } =
        from iss in Gen.Frequency((1, WireGen.UInt), (2, Gen.Choose(-3000, 10).Select(d => unchecked((uint)d))))
        from length in Gen.Choose(1, 4000)
        from data in Gen.ArrayOf(WireGen.Byte, length)
        from segments in Gen.ListOf(
            from start in Gen.Choose(0, length - 1)
            from len in Gen.Choose(1, 900)
            select (start, Math.Min(len, length - start))).Select(l => l.Take(20).ToArray())
        from finAfter in Gen.Choose(0, 20)
        select new Delivery(iss, data, segments, finAfter);

    [Property]
    public Property A_connection_reassembles_any_order_of_overlapping_segments_like_a_model()
    {
        // The peer's bytes reach a real connection (under a manual clock) in random order, with
        // overlaps, duplicates and the FIN anywhere; after each segment the bytes delivered in order
        // equal the model's contiguous prefix, and the application reads exactly the stream.
        return Prop.ForAll(DeliveryGen.ToArbitrary(), delivery =>
        {
            var (peerIss, data, segments, finAfter) = delivery;
            var h = new TcpHarness();
            h.Stack.Tcp.Listen(80, new MeshTcpListenerOptions());
            h.Deliver(new Segment(40000, 80, peerIss, 0, TcpFlags.Syn, 65535) { Options = TcpOptions.None with { MaxSegmentSize = 1000, SackPermitted = true } });
            var synAck = h.Next();
            uint ack = synAck.Seq + 1;
            h.Deliver(new Segment(40000, 80, peerIss + 1, ack, TcpFlags.Ack, 65535));
            var connection = h.Connection;

            // Every segment as given, then the whole stream in order so that it completes.
            var all = segments.ToList();
            for (int start = 0; start < data.Length; start += 1000)
            {
                all.Add((start, Math.Min(1000, data.Length - start)));
            }

            var received = new bool[data.Length];
            bool finSent = false;
            for (int i = 0; i <= all.Count; i++)
            {
                if (i == Math.Min(finAfter, all.Count))
                {
                    h.Deliver(new Segment(40000, 80, unchecked(peerIss + 1 + (uint)data.Length), ack, TcpFlags.Fin | TcpFlags.Ack, 65535));
                    finSent = true;
                }

                if (i < all.Count)
                {
                    var (start, length) = all[i];
                    h.Deliver(new Segment(40000, 80, unchecked(peerIss + 1 + (uint)start), ack, TcpFlags.Ack, 65535) { Payload = data.AsSpan(start, length).ToArray() });
                    Array.Fill(received, true, start, length);
                }

                int prefix = Array.IndexOf(received, false) is var hole && hole >= 0 ? hole : data.Length;
                bool closed = finSent && prefix == data.Length;
                Assert.True(connection.Counters.BytesReceived == prefix, $"after segment {i}: {connection.Counters.BytesReceived} bytes in order, model {prefix}");
                Assert.Equal(closed ? TcpState.CloseWait : TcpState.Established, connection.State);
            }

            // Every ACK the stack sent acknowledged no more than had arrived in order, and the last one all of it plus the FIN.
            var acks = h.TakeAll();
            Assert.NotEmpty(acks);
            Assert.Equal(unchecked(peerIss + 2 + (uint)data.Length), acks[^1].Ack);

            var output = new MemoryStream();
            var buffer = new byte[1500];
            while (true)
            {
                var read = connection.ReadAsync(buffer, CancellationToken.None);
                Assert.True(read.IsCompletedSuccessfully, "everything has arrived, so no read may wait");

                if (read.Result == 0)
                {
                    break;
                }

                output.Write(buffer, 0, read.Result);
            }

            Assert.Equal(data, output.ToArray());
            Assert.Equal(0, h.Drops.Get(DropReason.TcpReassemblyFull)); // at most 20 holes, under the 32 tracked
            Assert.Equal(h.Drops.Get(DropReason.TcpUnacceptable), h.Drops.Total); // only old duplicates were dropped
        });
    }
}
