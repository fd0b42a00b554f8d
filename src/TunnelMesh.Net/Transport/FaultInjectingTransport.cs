using System.Diagnostics.CodeAnalysis;

namespace TunnelMesh.Net.Transport;

/// <summary>Which directions the random faults of a <see cref="FaultInjectingTransport"/> apply to.</summary>
[Flags]
internal enum FaultDirection
{
    /// <summary>No random faults (blocking still applies).</summary>
    None = 0,

    /// <summary>Datagrams passed to <see cref="IDatagramTransport.Send"/>.</summary>
    Send = 1,

    /// <summary>Datagrams received from the inner transport.</summary>
    Receive = 2,

    /// <summary>Both.</summary>
    Both = Send | Receive,
}

/// <summary>What a <see cref="FaultInjectingTransport"/> did to the datagrams of one direction.</summary>
/// <param name="Forwarded">Datagrams passed on (a duplicate counts once more).</param>
/// <param name="Dropped">Datagrams dropped at random.</param>
/// <param name="Duplicated">Datagrams passed on twice.</param>
/// <param name="Reordered">Datagrams held back and passed on after the next one.</param>
/// <param name="Blocked">Datagrams dropped by the block predicate.</param>
internal readonly record struct FaultStatistics(long Forwarded, long Dropped, long Duplicated, long Reordered, long Blocked);

/// <summary>
/// A decorator that injects faults into any transport, like smoltcp's <c>FaultInjector</c>: random
/// drops, duplicates and reordering from a seeded <see cref="Random"/>, and a predicate that blocks
/// every datagram to or from matching endpoints. All settings can change at run time.
/// </summary>
/// <remarks>
/// <para>
/// Determinism: each direction has its own generator (seeded with the seed, and the seed xor a constant),
/// and every datagram that is not blocked draws exactly three numbers, in this order: drop, duplicate,
/// reorder. A decision is "draw &lt; probability". So for a seed and the same sequence of datagrams the
/// faults are identical, and changing one probability does not shift the others' decisions.
/// </para>
/// <para>
/// Reordering holds one datagram back (a copy, on the send side, since the caller keeps its buffers) and
/// passes it on right after the next datagram of that direction; while one is held, another is not
/// held. A held datagram with no successor stays held until disposal. A datagram chosen for dropping
/// is neither duplicated nor held; a held datagram is not duplicated.
/// </para>
/// <para>
/// Sends are serialised by a lock held across the inner send, so faults and order are deterministic
/// even with concurrent callers. The receive side runs on the inner transport's receive thread.
/// </para>
/// </remarks>
[SuppressMessage("Security", "CA5394:Do not use insecure randomness", Justification = "Fault injection must be reproducible from a seed.")]
internal sealed class FaultInjectingTransport : IDatagramTransport, IDatagramReceiver
{
    private const int ReceiveSeedSalt = 0x5BD1E995;

    private readonly IDatagramTransport _inner;
    private readonly PacketBufferPool _pool;
    private readonly Direction _send;
    private readonly Direction _receive;
    private readonly Lock _sendGate = new();
    private IDatagramReceiver? _receiver;
    private int _disposed;

    /// <summary>Wraps <paramref name="inner"/>; faults are off until a probability or the predicate is set.</summary>
    public FaultInjectingTransport(IDatagramTransport inner, int seed, PacketBufferPool? pool = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
        _pool = pool ?? PacketBufferPool.Shared;
        _send = new Direction(new Random(seed));
        _receive = new Direction(new Random(seed ^ ReceiveSeedSalt));
    }

    /// <summary>Probability (0..1) that a datagram is dropped.</summary>
    public double DropProbability { get; set; }

    /// <summary>Probability (0..1) that a datagram is passed on twice.</summary>
    public double DuplicateProbability { get; set; }

    /// <summary>Probability (0..1) that a datagram is held back and passed on after the next one.</summary>
    public double ReorderProbability { get; set; }

    /// <summary>Where the random faults apply. Default <see cref="FaultDirection.Send"/>.</summary>
    public FaultDirection Directions { get; set; } = FaultDirection.Send;

    /// <summary>
    /// Blocks (drops and counts) every datagram sent to, or received from, an endpoint for which it
    /// returns true. Null (the default) blocks nothing. Applies in both directions.
    /// </summary>
    public Func<Endpoint, bool>? Block { get; set; }

    /// <inheritdoc/>
    public int LocalPort => _inner.LocalPort;

    /// <summary>What was done to sent datagrams.</summary>
    public FaultStatistics SendStatistics => _send.Snapshot();

    /// <summary>What was done to received datagrams.</summary>
    public FaultStatistics ReceiveStatistics => _receive.Snapshot();

    /// <inheritdoc/>
    public void Start(IDatagramReceiver receiver)
    {
        ArgumentNullException.ThrowIfNull(receiver);
        if (Interlocked.CompareExchange(ref _receiver, receiver, null) is not null)
        {
            throw new InvalidOperationException("The transport is already started.");
        }

        _inner.Start(this);
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<PacketBuffer> batch)
    {
        lock (_sendGate)
        {
            var d = _send;
            bool random = (Directions & FaultDirection.Send) != 0;
            var block = Block;
            var output = d.Scratch(2 * batch.Length + 1);
            var copies = d.CopiesScratch(batch.Length);
            int count = 0;
            int released = 0;
            foreach (var buffer in batch)
            {
                if (block is not null && block(buffer.Endpoint))
                {
                    d.Blocked++;
                    continue;
                }

                var fate = random ? Draw(d.Random) : Fate.Forward;
                if (fate == Fate.Drop)
                {
                    d.Dropped++;
                    continue;
                }

                if (fate == Fate.Hold && d.Held is null)
                {
                    d.Held = Copy(buffer);
                    d.Reordered++;
                    continue;
                }

                output[count++] = buffer;
                if (fate == Fate.Duplicate)
                {
                    output[count++] = buffer;
                    d.Duplicated++;
                }

                if (d.Held is not null)
                {
                    // Pass the held copy on after this one; ours to return once the inner send is done.
                    output[count++] = d.Held;
                    copies[released++] = d.Held;
                    d.Held = null;
                }
            }

            d.Forwarded += count;
            if (count > 0)
            {
                _inner.Send(output.AsSpan(0, count));
                output.AsSpan(0, count).Clear();
            }

            for (int i = 0; i < released; i++)
            {
                copies[i].Return();
                copies[i] = null!;
            }
        }
    }

    /// <inheritdoc/>
    void IDatagramReceiver.OnDatagrams(ReadOnlySpan<PacketBuffer> batch)
    {
        // The inner transport's receive thread: one caller at a time, and we own the buffers.
        var d = _receive;
        bool random = (Directions & FaultDirection.Receive) != 0;
        var block = Block;
        var output = d.Scratch(2 * batch.Length + 1);
        int count = 0;
        foreach (var buffer in batch)
        {
            if (block is not null && block(buffer.Endpoint))
            {
                d.Blocked++;
                buffer.Return();
                continue;
            }

            var fate = random ? Draw(d.Random) : Fate.Forward;
            if (fate == Fate.Drop)
            {
                d.Dropped++;
                buffer.Return();
                continue;
            }

            if (fate == Fate.Hold && d.Held is null)
            {
                d.Held = buffer;
                d.Reordered++;
                continue;
            }

            output[count++] = buffer;
            if (fate == Fate.Duplicate)
            {
                output[count++] = Copy(buffer);
                d.Duplicated++;
            }

            if (d.Held is not null)
            {
                output[count++] = d.Held;
                d.Held = null;
            }
        }

        d.Forwarded += count;
        if (count > 0)
        {
            _receiver!.OnDatagrams(output.AsSpan(0, count));
            output.AsSpan(0, count).Clear();
        }
    }

    /// <summary>Disposes the inner transport and frees held datagrams. Safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _inner.DisposeAsync().ConfigureAwait(false);
        lock (_sendGate)
        {
            _send.Held?.Return();
            _send.Held = null;
        }

        // The inner receive thread has stopped, so nobody touches the receive side any more.
        _receive.Held?.Return();
        _receive.Held = null;
    }

    private Fate Draw(Random random)
    {
        double drop = random.NextDouble();
        double duplicate = random.NextDouble();
        double reorder = random.NextDouble();
        if (drop < DropProbability)
        {
            return Fate.Drop;
        }

        if (duplicate < DuplicateProbability)
        {
            return Fate.Duplicate;
        }

        return reorder < ReorderProbability ? Fate.Hold : Fate.Forward;
    }

    private PacketBuffer Copy(PacketBuffer source)
    {
        var copy = _pool.Rent();
        copy.Offset = source.Offset;
        copy.Length = source.Length;
        copy.Endpoint = source.Endpoint;
        source.Span.CopyTo(copy.Span);
        return copy;
    }

    private enum Fate
    {
        Forward,
        Drop,
        Duplicate,
        Hold,
    }

    /// <summary>The state of one direction. Send: guarded by the send lock; receive: the receive thread's.</summary>
    private sealed class Direction
    {
        private PacketBuffer[] _scratch = new PacketBuffer[16];
        private PacketBuffer[] _copies = new PacketBuffer[16];

        public Direction(Random random) => Random = random;

        public Random Random { get; }

        public PacketBuffer? Held { get; set; }

        // Written by one thread at a time; read for stats without a lock (a torn read is only possible on 32-bit).
        public long Forwarded { get; set; }

        public long Dropped { get; set; }

        public long Duplicated { get; set; }

        public long Reordered { get; set; }

        public long Blocked { get; set; }

        public PacketBuffer[] Scratch(int size)
        {
            if (_scratch.Length < size)
            {
                _scratch = new PacketBuffer[Math.Max(size, _scratch.Length * 2)];
            }

            return _scratch;
        }

        public PacketBuffer[] CopiesScratch(int size)
        {
            if (_copies.Length < size)
            {
                _copies = new PacketBuffer[Math.Max(size, _copies.Length * 2)];
            }

            return _copies;
        }

        public FaultStatistics Snapshot() => new(Forwarded, Dropped, Duplicated, Reordered, Blocked);
    }
}
