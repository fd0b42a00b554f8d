using System.Buffers;

namespace TunnelMesh.Net.Stack.Tcp;

/// <summary>
/// A growable ring of bytes for a TCP connection's send or receive buffer. Committed bytes
/// (<see cref="Count"/>) are read from the front; new bytes are appended at the end, or written
/// further out first (<see cref="WriteAt"/>, for out-of-order data) and made readable later with
/// <see cref="Commit"/>.
/// </summary>
/// <remarks>
/// <para>Idle connections must cost little: no array is held until the first write, and
/// <see cref="Trim"/> returns the array to its pool (the TCP stack's, or <see cref="ArrayPool{T}.Shared"/>) once the ring is empty
/// (nothing committed and nothing written beyond). The next write rents again.</para>
/// <para><see cref="Capacity"/> is the logical size (what a receive window is advertised from). It
/// starts at the initial capacity and only grows, through <see cref="Grow"/>, up to
/// <see cref="MaxCapacity"/>; <see cref="Trim"/> keeps it, so a window never shrinks. Capacities
/// need not be powers of two (indexes wrap by comparison, not by mask); powers of two match the
/// pool's buckets, so the array held is then exactly <see cref="Capacity"/> bytes.</para>
/// <para>Bytes written by <see cref="WriteAt"/> sit at fixed places relative to the committed end,
/// which reading does not move; the ring remembers how far out they reach
/// (<see cref="PendingLength"/>) so that <see cref="Grow"/> keeps them and <see cref="Trim"/> does
/// not drop them. Not thread-safe: owned by the stack's loop.</para>
/// </remarks>
internal sealed class ByteRing
{
    /// <summary>The largest capacity a ring supports (2^30; index arithmetic then stays below 2^31).</summary>
    public const int MaxSupportedCapacity = 1 << 30;

    private readonly ArrayPool<byte> _pool;
    private byte[]? _array;
    private int _head;
    private int _count;
    private int _pending;

    /// <summary>Creates an empty ring holding no array.</summary>
    /// <param name="initialCapacity">The capacity before any growth (at least 1).</param>
    /// <param name="maxCapacity">The largest capacity <see cref="Grow"/> reaches (at least <paramref name="initialCapacity"/>, at most 2^30).</param>
    /// <param name="pool">Where arrays are rented from and returned to (default <see cref="ArrayPool{T}.Shared"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException">A capacity is out of range.</exception>
    public ByteRing(int initialCapacity, int maxCapacity, ArrayPool<byte>? pool = null)
    {
        _pool = pool ?? ArrayPool<byte>.Shared;
        ArgumentOutOfRangeException.ThrowIfLessThan(initialCapacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCapacity, initialCapacity);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxCapacity, MaxSupportedCapacity);
        Capacity = initialCapacity;
        MaxCapacity = maxCapacity;
    }

    /// <summary>The current logical capacity: committed bytes plus room for more.</summary>
    public int Capacity { get; private set; }

    /// <summary>The largest capacity the ring grows to.</summary>
    public int MaxCapacity { get; }

    /// <summary>The committed (readable) bytes.</summary>
    public int Count => _count;

    /// <summary>Room after the committed bytes: <see cref="Capacity"/> - <see cref="Count"/>.</summary>
    public int Free => Capacity - _count;

    /// <summary>
    /// How far past the committed end bytes written by <see cref="WriteAt"/> reach (0 when none):
    /// the end of the furthest such write, relative to <see cref="Count"/>.
    /// </summary>
    public int PendingLength => _pending;

    /// <summary>The size of the array held now (0 when none).</summary>
    public long AllocatedBytes => _array?.Length ?? 0;

    /// <summary>
    /// Appends up to <see cref="Free"/> bytes of <paramref name="data"/> at the end and commits them;
    /// returns how many. Equivalent to <c>WriteAt(0, data)</c> then <c>Commit</c>: it overwrites
    /// the start of any out-of-order bytes written beyond the end.
    /// </summary>
    public int Write(ReadOnlySpan<byte> data)
    {
        int written = WriteAt(0, data);
        Commit(written);
        return written;
    }

    /// <summary>
    /// Writes <paramref name="data"/> at <see cref="Count"/> + <paramref name="offset"/> without
    /// making it readable; only what fits below <see cref="Capacity"/> is written. Returns how many
    /// bytes were written (0 when the offset is at or past the capacity).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> is negative.</exception>
    public int WriteAt(int offset, ReadOnlySpan<byte> data)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        int room = Free;
        if (offset >= room || data.IsEmpty)
        {
            return 0;
        }

        int length = Math.Min(data.Length, room - offset);
        var array = _array ??= _pool.Rent(Capacity);
        int start = Wrap(_head + _count + offset);
        int first = Math.Min(length, Capacity - start);
        data[..first].CopyTo(array.AsSpan(start));
        data[first..length].CopyTo(array);
        _pending = Math.Max(_pending, offset + length);
        return length;
    }

    /// <summary>
    /// Makes the first <paramref name="count"/> bytes past the committed end readable: bytes that
    /// <see cref="WriteAt"/> put there.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative or beyond the bytes written past the end (<see cref="PendingLength"/>).</exception>
    public void Commit(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _pending);
        _count += count;
        _pending -= count;
    }

    /// <summary>Consumes up to <c>destination.Length</c> bytes from the front into <paramref name="destination"/>; returns how many.</summary>
    public int Read(Span<byte> destination)
    {
        int length = Peek(0, destination);
        Discard(length);
        return length;
    }

    /// <summary>
    /// Copies up to <c>destination.Length</c> committed bytes starting <paramref name="offset"/>
    /// bytes after the front into <paramref name="destination"/> without consuming them; returns
    /// how many (<c>min(destination.Length, Count - offset)</c>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> is negative or past <see cref="Count"/>.</exception>
    public int Peek(int offset, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(offset, _count);
        int length = Math.Min(destination.Length, _count - offset);
        if (length == 0)
        {
            return 0;
        }

        var array = _array!;
        int start = Wrap(_head + offset);
        int first = Math.Min(length, Capacity - start);
        array.AsSpan(start, first).CopyTo(destination);
        array.AsSpan(0, length - first).CopyTo(destination[first..]);
        return length;
    }

    /// <summary>Consumes <paramref name="count"/> bytes from the front without copying them (acknowledged data).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative or more than <see cref="Count"/>.</exception>
    public void Discard(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _count);
        _count -= count;
        _head = _count == 0 && _pending == 0 ? 0 : Wrap(_head + count);
    }

    /// <summary>
    /// The committed bytes as at most two pieces of the array, in order, without copying
    /// (<paramref name="second"/> is empty unless the bytes wrap). Valid until the ring is next
    /// changed; the pieces must not be kept across <see cref="Grow"/> or <see cref="Trim"/>.
    /// </summary>
    public void GetReadableSegments(out ReadOnlyMemory<byte> first, out ReadOnlyMemory<byte> second)
    {
        if (_count == 0)
        {
            first = second = ReadOnlyMemory<byte>.Empty;
            return;
        }

        var array = _array!;
        int firstLength = Math.Min(_count, Capacity - _head);
        first = new ReadOnlyMemory<byte>(array, _head, firstLength);
        second = new ReadOnlyMemory<byte>(array, 0, _count - firstLength);
    }

    /// <summary>
    /// Raises <see cref="Capacity"/> to <paramref name="newCapacity"/>, or to
    /// <see cref="MaxCapacity"/> if that is smaller, keeping the committed bytes and the bytes
    /// written beyond them. Returns true when the capacity increased; false when it is already at
    /// the maximum or <paramref name="newCapacity"/> is not larger than it.
    /// </summary>
    public bool Grow(int newCapacity)
    {
        newCapacity = Math.Min(newCapacity, MaxCapacity);
        if (newCapacity <= Capacity)
        {
            return false;
        }

        var old = _array;
        int used = _count + _pending;
        if (old is null || (old.Length >= newCapacity && _head + used <= Capacity))
        {
            // No array yet, or the one held is already large enough and the bytes do not wrap:
            // their positions stay right under the larger modulus.
            Capacity = newCapacity;
            return true;
        }

        var array = _pool.Rent(newCapacity);
        int first = Math.Min(used, Capacity - _head);
        old.AsSpan(_head, first).CopyTo(array);
        old.AsSpan(0, used - first).CopyTo(array.AsSpan(first));
        _pool.Return(old);
        _array = array;
        _head = 0;
        Capacity = newCapacity;
        return true;
    }

    /// <summary>
    /// Returns the array to the pool when nothing is committed and nothing written beyond; the
    /// capacity is kept and the next write rents again. Does nothing otherwise.
    /// </summary>
    public void Trim()
    {
        if (_count != 0 || _pending != 0 || _array is null)
        {
            return;
        }

        _pool.Return(_array);
        _array = null;
        _head = 0;
    }

    private int Wrap(int index) => index >= Capacity ? index - Capacity : index;
}
