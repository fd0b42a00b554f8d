using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Stack.Tcp;
using TunnelMesh.Net.Tests.Wire;

namespace TunnelMesh.Net.Tests.Stack.Tcp;

public class ByteRingTests
{
    private enum OpKind
    {
        Write,
        WriteAt,
        Commit,
        Read,
        Peek,
        Discard,
        Grow,
        Trim,
    }

    private sealed record Op(OpKind Kind, int Number, byte[] Data);

    /// <summary>
    /// The plain model: the committed bytes as a list, and the bytes written beyond the committed
    /// end as a list of nullable bytes (null = never written), indexed by offset from that end.
    /// </summary>
    private sealed class Model(int capacity, int maxCapacity)
    {
        public List<byte> Committed { get; } = [];

        public List<byte?> Pending { get; } = [];

        public int Capacity { get; set; } = capacity;

        public int MaxCapacity { get; } = maxCapacity;

        public int Free => Capacity - Committed.Count;

        public int WriteAt(int offset, byte[] data)
        {
            int length = Math.Min(data.Length, Free - offset);
            if (length <= 0)
            {
                return 0;
            }

            while (Pending.Count < offset + length)
            {
                Pending.Add(null);
            }

            for (int i = 0; i < length; i++)
            {
                Pending[offset + i] = data[i];
            }

            return length;
        }

        /// <summary>How many bytes past the end are written without a gap.</summary>
        public int KnownPrefix()
        {
            int n = 0;
            while (n < Pending.Count && Pending[n] is not null)
            {
                n++;
            }

            return n;
        }

        public void Commit(int count)
        {
            Committed.AddRange(Pending.Take(count).Select(b => b!.Value));
            Pending.RemoveRange(0, count);
        }
    }

    private static Gen<Op> OpGen(int maxCapacity) =>
        from kind in Gen.Frequency(
            (5, Gen.Constant(OpKind.Write)), (4, Gen.Constant(OpKind.WriteAt)), (3, Gen.Constant(OpKind.Commit)),
            (4, Gen.Constant(OpKind.Read)), (2, Gen.Constant(OpKind.Peek)), (2, Gen.Constant(OpKind.Discard)),
            (1, Gen.Constant(OpKind.Grow)), (2, Gen.Constant(OpKind.Trim)))
        from number in Gen.Choose(0, maxCapacity + 4)
        from data in Gen.Choose(0, maxCapacity + 4).SelectMany(n => Gen.ArrayOf(WireGen.Byte, n))
        select new Op(kind, number, data);

    private static Gen<(int Initial, int Max, Op[] Ops)> ScenarioGen { get; } =
        from initial in Gen.Choose(1, 24)
        from extra in Gen.Choose(0, 40)
        from ops in Gen.ListOf(OpGen(initial + extra)).Select(l => l.ToArray())
        select (initial, initial + extra, ops);

    [Property]
    public Property Agrees_with_a_list_model()
    {
        return Prop.ForAll(ScenarioGen.ToArbitrary(), scenario =>
        {
            var (initial, max, ops) = scenario;
            var ring = new ByteRing(initial, max);
            var model = new Model(initial, max);
            foreach (var op in ops)
            {
                if (!Apply(ring, model, op) || !Same(ring, model))
                {
                    return false;
                }
            }

            // Bytes written beyond the end survived every Grow, Read and Trim: commit them all and
            // compare the ones that were ever written.
            int pending = ring.PendingLength;
            var expectedPending = model.Pending.ToArray();
            ring.Commit(pending);
            var tail = new byte[pending];
            ring.Peek(ring.Count - pending, tail);
            for (int i = 0; i < pending; i++)
            {
                if (expectedPending[i] is { } b && tail[i] != b)
                {
                    return false;
                }
            }

            return true;
        });
    }

    private static bool Apply(ByteRing ring, Model model, Op op)
    {
        switch (op.Kind)
        {
            case OpKind.Write:
            {
                // Write is WriteAt(0) then Commit.
                int expected = model.WriteAt(0, op.Data);
                model.Commit(expected);
                return ring.Write(op.Data) == expected;
            }

            case OpKind.WriteAt:
            {
                int offset = op.Number;
                return ring.WriteAt(offset, op.Data) == model.WriteAt(offset, op.Data);
            }

            case OpKind.Commit:
            {
                int count = Math.Min(op.Number, model.KnownPrefix());
                ring.Commit(count);
                model.Commit(count);
                return true;
            }

            case OpKind.Read:
            {
                var destination = new byte[op.Number];
                int read = ring.Read(destination);
                int expected = Math.Min(op.Number, model.Committed.Count);
                bool ok = read == expected && destination.AsSpan(0, read).SequenceEqual(model.Committed.GetRange(0, expected).ToArray());
                model.Committed.RemoveRange(0, expected);
                return ok;
            }

            case OpKind.Peek:
            {
                int offset = op.Number % (model.Committed.Count + 1);
                var destination = new byte[op.Data.Length];
                int peeked = ring.Peek(offset, destination);
                int expected = Math.Min(destination.Length, model.Committed.Count - offset);
                return peeked == expected
                    && destination.AsSpan(0, peeked).SequenceEqual(model.Committed.GetRange(offset, expected).ToArray());
            }

            case OpKind.Discard:
            {
                int count = op.Number % (model.Committed.Count + 1);
                ring.Discard(count);
                model.Committed.RemoveRange(0, count);
                return true;
            }

            case OpKind.Grow:
            {
                int target = Math.Min(op.Number * 2, model.MaxCapacity);
                bool expected = target > model.Capacity;
                if (expected)
                {
                    model.Capacity = target;
                }

                return ring.Grow(op.Number * 2) == expected;
            }

            case OpKind.Trim:
            {
                ring.Trim();
                bool empty = model.Committed.Count == 0 && model.Pending.Count == 0;
                return !empty || ring.AllocatedBytes == 0;
            }

            default:
                return false;
        }
    }

    private static bool Same(ByteRing ring, Model model)
    {
        var all = new byte[ring.Count];
        ring.Peek(0, all);
        ring.GetReadableSegments(out var first, out var second);
        var joined = first.ToArray().Concat(second.ToArray()).ToArray();
        return ring.Count == model.Committed.Count
            && ring.Capacity == model.Capacity
            && ring.Free == model.Free
            && ring.PendingLength == model.Pending.Count
            && ring.Count + ring.PendingLength <= ring.Capacity
            && (ring.AllocatedBytes == 0 || ring.AllocatedBytes >= ring.Capacity)
            && (ring.Count == 0 || ring.AllocatedBytes > 0)
            && all.AsSpan().SequenceEqual(model.Committed.ToArray())
            && joined.AsSpan().SequenceEqual(all);
    }

    [Fact]
    public void Holds_no_array_until_the_first_write_and_none_after_trim_when_empty()
    {
        var ring = new ByteRing(4096, 65536);
        Assert.Equal(0, ring.AllocatedBytes);
        Assert.Equal(4096, ring.Free);
        Assert.Equal(0, ring.Read(new byte[10]));
        Assert.Equal(0, ring.WriteAt(0, []));
        ring.Trim();
        Assert.Equal(0, ring.AllocatedBytes);
        Assert.True(ring.Grow(8192)); // growing an unallocated ring allocates nothing either
        Assert.Equal(0, ring.AllocatedBytes);

        Assert.Equal(3, ring.Write([1, 2, 3]));
        Assert.Equal(8192, ring.AllocatedBytes);
        ring.Trim(); // not empty: keeps the array
        Assert.Equal(8192, ring.AllocatedBytes);

        ring.Discard(3);
        ring.Trim();
        Assert.Equal(0, ring.AllocatedBytes);
        Assert.Equal(8192, ring.Capacity); // the advertised window does not shrink

        Assert.Equal(2, ring.Write([4, 5]));
        var read = new byte[4];
        Assert.Equal(2, ring.Read(read));
        Assert.Equal(new byte[] { 4, 5, 0, 0 }, read);
    }

    [Fact]
    public async Task Rents_from_and_returns_to_the_pool_it_was_given()
    {
        var pool = new CountingPool();
        var ring = new ByteRing(1 << 20, 1 << 20, pool);
        Assert.Equal(3, ring.Write([1, 2, 3]));
        Assert.Equal((1, 0), (pool.Rents, pool.Returns));
        ring.Discard(3);
        ring.Trim();
        Assert.Equal((1, 1), (pool.Rents, pool.Returns));

        // Why the TCP stack gives rings a pool of its own: a ring empties on the reading thread and
        // fills again on the receiving one. The stack's pool hands an array returned on one thread
        // to a rent on another; ArrayPool.Shared keeps it in the returning thread's slot first.
        var stackPool = System.Buffers.ArrayPool<byte>.Create(ByteRing.MaxSupportedCapacity, 16);
        byte[] array = await OnNewThread(() => stackPool.Rent(4 << 20));
        await OnNewThread(() => { stackPool.Return(array); return 0; });
        Assert.Same(array, await OnNewThread(() => stackPool.Rent(4 << 20)));

        static Task<T> OnNewThread<T>(Func<T> f) =>
            Task.Factory.StartNew(f, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private sealed class CountingPool : System.Buffers.ArrayPool<byte>
    {
        private readonly System.Buffers.ArrayPool<byte> _inner = Create();

        public int Rents { get; private set; }

        public int Returns { get; private set; }

        public override byte[] Rent(int minimumLength)
        {
            Rents++;
            return _inner.Rent(minimumLength);
        }

        public override void Return(byte[] array, bool clearArray = false)
        {
            Returns++;
            _inner.Return(array, clearArray);
        }
    }

    [Fact]
    public void Trim_keeps_the_array_while_out_of_order_bytes_are_pending()
    {
        var ring = new ByteRing(16, 16);
        Assert.Equal(3, ring.WriteAt(5, [7, 8, 9]));
        Assert.Equal(0, ring.Count);
        Assert.Equal(8, ring.PendingLength);
        ring.Trim();
        Assert.NotEqual(0, ring.AllocatedBytes);

        Assert.Equal(5, ring.WriteAt(0, [1, 2, 3, 4, 5]));
        ring.Commit(8);
        var all = new byte[8];
        Assert.Equal(8, ring.Read(all));
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 7, 8, 9 }, all);
        ring.Trim();
        Assert.Equal(0, ring.AllocatedBytes);
    }

    [Fact]
    public void Out_of_order_writes_commit_in_order_across_the_wrap()
    {
        var ring = new ByteRing(8, 8);
        Assert.Equal(6, ring.Write([9, 9, 9, 9, 9, 1]));
        ring.Discard(5); // one byte left at index 5; the committed end is index 6, so later writes wrap
        Assert.Equal(7, ring.Free);
        Assert.Equal(3, ring.WriteAt(3, [13, 14, 15]));
        Assert.Equal(1, ring.WriteAt(6, [16, 17, 18])); // cut at the capacity
        Assert.Equal(0, ring.WriteAt(7, [20]));
        Assert.Equal(7, ring.PendingLength);
        Assert.Equal(3, ring.WriteAt(0, [10, 11, 12]));
        ring.Commit(7);
        Assert.Equal(0, ring.Free);
        ring.GetReadableSegments(out var first, out var second);
        Assert.Equal(new byte[] { 1, 10, 11 }, first.ToArray());
        Assert.Equal(new byte[] { 12, 13, 14, 15, 16 }, second.ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.Commit(1));
    }

    [Fact]
    public void Grow_keeps_committed_and_pending_bytes_when_they_wrap()
    {
        var ring = new ByteRing(8, 64);
        ring.Write([9, 9, 9, 9, 9, 1]);
        ring.Discard(5);                   // [1] at index 5
        ring.Write([2, 3, 4]);             // indexes 6, 7, 0
        ring.WriteAt(2, [7, 8]);           // indexes 3, 4, past a gap at 1, 2
        Assert.Equal(4, ring.PendingLength);
        Assert.True(ring.Grow(32));
        Assert.Equal(32, ring.Capacity);
        Assert.Equal(28, ring.Free);
        Assert.Equal(2, ring.WriteAt(0, [5, 6]));
        ring.Commit(4);
        var all = new byte[8];
        Assert.Equal(8, ring.Peek(0, all));
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, all);
        Assert.True(ring.Grow(1000));
        Assert.Equal(64, ring.Capacity);
        Assert.False(ring.Grow(1000));
        Assert.False(ring.Grow(10));
        Array.Clear(all);
        Assert.Equal(8, ring.Read(all));
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, all);
    }

    [Fact]
    public void Arguments_are_checked()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ByteRing(0, 16));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ByteRing(32, 16));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ByteRing(16, ByteRing.MaxSupportedCapacity + 1));
        var ring = new ByteRing(16, 16);
        ring.Write([1, 2]);
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.Discard(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.Peek(3, new byte[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.WriteAt(-1, [1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.Commit(1)); // nothing written beyond the end
        Assert.Equal(0, ring.Peek(2, new byte[1]));
    }
}
