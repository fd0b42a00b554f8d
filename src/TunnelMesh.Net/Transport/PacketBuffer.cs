using System.Collections.Concurrent;

namespace TunnelMesh.Net.Transport;

/// <summary>
/// A pooled packet buffer with room in front of the data (so headers can be prepended and payloads
/// encrypted in place) and room behind it (for the AEAD tag and padding). The data is
/// <c>Array[Offset..(Offset + Length)]</c>. A buffer has one owner at a time; whoever owns it last
/// returns it with <see cref="Return"/>.
/// </summary>
internal sealed class PacketBuffer
{
    /// <summary>Capacity of every pooled buffer: a 64 KiB datagram plus header and tail room.</summary>
    public const int Capacity = 65536 + HeadRoom + TailRoom;

    /// <summary>
    /// Room kept in front of an IP packet for the headers written below it: the 16-byte WireGuard
    /// transport header plus framing a transport may add (the relay's frame header).
    /// </summary>
    public const int HeadRoom = 64;

    /// <summary>Room kept behind the data: 16-byte Poly1305 tag plus up to 15 bytes of padding.</summary>
    public const int TailRoom = 32;

    private readonly PacketBufferPool? _pool;

    internal PacketBuffer(PacketBufferPool? pool, int capacity = Capacity)
    {
        _pool = pool;
        Array = GC.AllocateUninitializedArray<byte>(capacity, pinned: true);
    }

    /// <summary>The backing store (pinned, so it can be handed to native batched socket calls).</summary>
    public byte[] Array { get; }

    /// <summary>Start of the data in <see cref="Array"/>.</summary>
    public int Offset { get; set; }

    /// <summary>Length of the data.</summary>
    public int Length { get; set; }

    /// <summary>The remote endpoint this datagram came from or goes to.</summary>
    public Endpoint Endpoint { get; set; }

    /// <summary>The data.</summary>
    public Span<byte> Span => Array.AsSpan(Offset, Length);

    /// <summary>The data as memory.</summary>
    public Memory<byte> Memory => Array.AsMemory(Offset, Length);

    /// <summary>Everything from <see cref="Offset"/> to the end of the array (for receiving).</summary>
    public Span<byte> Available => Array.AsSpan(Offset);

    /// <summary>Resets to an empty buffer whose data starts after <paramref name="headRoom"/> bytes.</summary>
    public void Reset(int headRoom = HeadRoom)
    {
        Offset = headRoom;
        Length = 0;
        Endpoint = default;
    }

    /// <summary>Grows the data by <paramref name="count"/> bytes at the front and returns them.</summary>
    public Span<byte> Prepend(int count)
    {
        if (count > Offset)
        {
            ThrowNoHeadRoom();
        }

        Offset -= count;
        Length += count;
        return Array.AsSpan(Offset, count);
    }

    /// <summary>Drops <paramref name="count"/> bytes from the front of the data.</summary>
    public void TrimFront(int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, Length);
        Offset += count;
        Length -= count;
    }

    /// <summary>Gives the buffer back to its pool (a no-op for unpooled buffers).</summary>
    public void Return() => _pool?.Return(this);

    private static void ThrowNoHeadRoom() => throw new InvalidOperationException("No head room left in the packet buffer.");
}

/// <summary>A bounded pool of <see cref="PacketBuffer"/>s. Thread-safe.</summary>
internal sealed class PacketBufferPool
{
    private readonly ConcurrentQueue<PacketBuffer> _free = new();
    private readonly int _maxRetained;
    private int _retained;
    private long _created;
    private long _discarded;

    /// <summary>Creates a pool that keeps at most <paramref name="maxRetained"/> free buffers.</summary>
    public PacketBufferPool(int maxRetained = 4096) => _maxRetained = maxRetained;

    /// <summary>A process-wide pool for callers that have no pool of their own.</summary>
    public static PacketBufferPool Shared { get; } = new();

    /// <summary>Buffers this pool has allocated so far (each <see cref="PacketBuffer.Capacity"/> bytes, pinned).</summary>
    public long Created => Volatile.Read(ref _created);

    /// <summary>Buffers handed back while the pool already held its maximum, left to the GC.</summary>
    public long Discarded => Volatile.Read(ref _discarded);

    /// <summary>Free buffers held now.</summary>
    public int Retained => Volatile.Read(ref _retained);

    /// <summary>Rents a buffer reset to empty with the default head room.</summary>
    public PacketBuffer Rent()
    {
        if (_free.TryDequeue(out var buffer))
        {
            Interlocked.Decrement(ref _retained);
        }
        else
        {
            buffer = new PacketBuffer(this);
            Interlocked.Increment(ref _created);
        }

        buffer.Reset();
        return buffer;
    }

    internal void Return(PacketBuffer buffer)
    {
        if (Interlocked.Increment(ref _retained) <= _maxRetained)
        {
            _free.Enqueue(buffer);
        }
        else
        {
            Interlocked.Decrement(ref _retained);
            Interlocked.Increment(ref _discarded);
        }
    }
}
