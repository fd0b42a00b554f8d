using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Tests.Transport;

public class FaultInjectingTransportTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(200);

    private sealed class Pair : IAsyncDisposable
    {
        public Pair(int seed)
        {
            var network = new InMemoryNetwork(queueCapacity: 100_000);
            Inner = network.CreateTransport();
            Faulty = new FaultInjectingTransport(Inner, seed);
            Other = network.CreateTransport();
            Faulty.Start(AtFaulty);
            Other.Start(AtOther);
        }

        public InMemoryTransport Inner { get; }

        public FaultInjectingTransport Faulty { get; }

        public InMemoryTransport Other { get; }

        public DatagramSink AtFaulty { get; } = new();

        public DatagramSink AtOther { get; } = new();

        /// <summary>Sends datagrams numbered <paramref name="first"/>.. from the faulty side, one per call.</summary>
        public void SendNumbered(int first, int count, Endpoint to, IDatagramTransport from)
        {
            var buffer = PacketBufferPool.Shared.Rent();
            for (int i = first; i < first + count; i++)
            {
                buffer.Length = 4;
                System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(buffer.Span, i);
                buffer.Endpoint = to;
                from.Send([buffer]);
            }

            buffer.Return();
        }

        public async ValueTask DisposeAsync()
        {
            await Faulty.DisposeAsync();
            await Faulty.DisposeAsync();
            await Other.DisposeAsync();
            AtFaulty.Dispose();
            AtOther.Dispose();
        }
    }

    private static int[] Numbers(DatagramSink sink) =>
        sink.Received.Select(r => System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(r.Data)).ToArray();

    /// <summary>Replays the documented draw order (drop, duplicate, reorder per datagram) for a seed.</summary>
    private static (int Dropped, int Duplicated) Expected(int seed, int count, double drop, double duplicate)
    {
#pragma warning disable CA5394
        var random = new Random(seed);
        int dropped = 0, duplicated = 0;
        for (int i = 0; i < count; i++)
        {
            double d = random.NextDouble(), u = random.NextDouble();
            random.NextDouble();
            if (d < drop)
            {
                dropped++;
            }
            else if (u < duplicate)
            {
                duplicated++;
            }
        }
#pragma warning restore CA5394
        return (dropped, duplicated);
    }

    [Fact]
    public async Task Seeded_drops_are_exact_and_close_to_the_rate()
    {
        const int N = 10_000;
        await using var pair = new Pair(seed: 42);
        pair.Faulty.DropProbability = 0.3;
        pair.SendNumbered(0, N, pair.Other.LocalEndpoint, pair.Faulty);

        var (dropped, _) = Expected(42, N, 0.3, 0);
        Assert.True(pair.AtOther.WaitFor(N - dropped, Timeout));
        Assert.True(pair.AtOther.NothingMoreWithin(Quiet));
        Assert.Equal(new FaultStatistics(N - dropped, dropped, 0, 0, 0), pair.Faulty.SendStatistics);
        Assert.InRange(dropped, N * 0.28, N * 0.32);
        var numbers = Numbers(pair.AtOther);
        Assert.Equal(numbers.Order(), numbers); // drops do not reorder
    }

    [Fact]
    public async Task Duplicates_arrive_twice()
    {
        await using var pair = new Pair(seed: 7);
        pair.Faulty.DuplicateProbability = 1;
        pair.SendNumbered(0, 50, pair.Other.LocalEndpoint, pair.Faulty);
        Assert.True(pair.AtOther.WaitFor(100, Timeout));
        Assert.Equal(Enumerable.Range(0, 50).SelectMany(i => new[] { i, i }), Numbers(pair.AtOther));

        pair.Faulty.DuplicateProbability = 0.25;
        pair.SendNumbered(50, 1000, pair.Other.LocalEndpoint, pair.Faulty);
        // The generator has moved on by 50 datagrams' worth of draws: replay those too.
        var (_, before) = Expected(7, 50, 0, 0.25);
        var (_, total) = Expected(7, 1050, 0, 0.25);
        int duplicated = total - before;
        Assert.True(pair.AtOther.WaitFor(1000 + duplicated, Timeout));
        Assert.True(pair.AtOther.NothingMoreWithin(Quiet));
        Assert.Equal(50 + duplicated, pair.Faulty.SendStatistics.Duplicated);
    }

    [Fact]
    public async Task Reorder_releases_a_held_datagram_after_the_next()
    {
        await using var pair = new Pair(seed: 1);
        pair.Faulty.ReorderProbability = 1;
        pair.SendNumbered(0, 10, pair.Other.LocalEndpoint, pair.Faulty);
        Assert.True(pair.AtOther.WaitFor(10, Timeout));
        Assert.Equal([1, 0, 3, 2, 5, 4, 7, 6, 9, 8], Numbers(pair.AtOther));
        Assert.Equal(5, pair.Faulty.SendStatistics.Reordered);
    }

    [Fact]
    public async Task Block_works_both_ways_and_can_be_switched_at_run_time()
    {
        await using var pair = new Pair(seed: 3);
        var other = pair.Other.LocalEndpoint;
        pair.Faulty.Block = e => e == other;

        pair.SendNumbered(0, 5, other, pair.Faulty);               // to the blocked endpoint
        pair.SendNumbered(0, 5, pair.Inner.LocalEndpoint, pair.Other); // from it
        Assert.True(pair.AtOther.NothingMoreWithin(Quiet));
        Assert.True(pair.AtFaulty.NothingMoreWithin(Quiet));
        Assert.Equal(5, pair.Faulty.SendStatistics.Blocked);
        Assert.Equal(5, pair.Faulty.ReceiveStatistics.Blocked);

        pair.Faulty.Block = null;
        pair.SendNumbered(10, 3, other, pair.Faulty);
        pair.SendNumbered(20, 3, pair.Inner.LocalEndpoint, pair.Other);
        Assert.True(pair.AtOther.WaitFor(3, Timeout));
        Assert.True(pair.AtFaulty.WaitFor(3, Timeout));
        Assert.Equal([10, 11, 12], Numbers(pair.AtOther));
        Assert.Equal([20, 21, 22], Numbers(pair.AtFaulty));
    }

    [Fact]
    public async Task Receive_side_faults_apply_when_asked()
    {
        await using var pair = new Pair(seed: 9);
        pair.Faulty.Directions = FaultDirection.Receive;
        pair.Faulty.DropProbability = 1;
        pair.SendNumbered(0, 20, pair.Inner.LocalEndpoint, pair.Other);
        pair.SendNumbered(0, 20, pair.Other.LocalEndpoint, pair.Faulty); // sends are untouched
        Assert.True(pair.AtOther.WaitFor(20, Timeout));
        Assert.True(pair.AtFaulty.NothingMoreWithin(Quiet));
        Assert.Equal(20, pair.Faulty.ReceiveStatistics.Dropped);

        pair.Faulty.DropProbability = 0;
        pair.Faulty.DuplicateProbability = 1;
        pair.SendNumbered(100, 3, pair.Inner.LocalEndpoint, pair.Other);
        Assert.True(pair.AtFaulty.WaitFor(6, Timeout));
        Assert.Equal([100, 100, 101, 101, 102, 102], Numbers(pair.AtFaulty));
    }

    [Fact]
    public async Task The_same_seed_gives_the_same_run()
    {
        async Task<int[]> Run(int seed)
        {
            await using var pair = new Pair(seed);
            pair.Faulty.DropProbability = 0.1;
            pair.Faulty.DuplicateProbability = 0.1;
            pair.Faulty.ReorderProbability = 0.1;
            pair.SendNumbered(0, 2000, pair.Other.LocalEndpoint, pair.Faulty);
            var stats = pair.Faulty.SendStatistics;
            Assert.True(pair.AtOther.WaitFor((int)stats.Forwarded, Timeout));
            return Numbers(pair.AtOther);
        }

        var first = await Run(11);
        var second = await Run(11);
        var other = await Run(12);
        Assert.Equal(first, second);
        Assert.NotEqual(first, other);
    }
}
