namespace TunnelMesh.Net.Stack.Tcp;

/// <summary>
/// Tracks which byte ranges past the receive point have arrived, as disjoint ranges of offsets
/// (offset 0 = RCV.NXT), like smoltcp's <c>Assembler</c>. The bytes themselves live in the receive
/// <see cref="ByteRing"/>; this only says which are there, so the connection knows when a gap is
/// filled (<see cref="RemoveFront"/>) and what to report in SACK blocks (<see cref="GetRanges"/>).
/// </summary>
/// <remarks>
/// Ranges are kept sorted by start, never overlapping or touching (touching ranges are merged), in
/// arrays sized once at construction: nothing is allocated afterwards. Every range also carries the
/// time it was last added to or extended, so <see cref="GetRanges"/> can list the most recent first
/// (RFC 2018 section 4). Operations are linear in the number of ranges, which is small. Not
/// thread-safe.
/// </remarks>
internal sealed class TcpAssembler
{
    private readonly int[] _starts;
    private readonly int[] _ends;
    private readonly long[] _touched;
    private int _count;
    private long _clock;

    /// <summary>Creates an empty assembler that holds at most <paramref name="maxRanges"/> disjoint ranges.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxRanges"/> is below 1.</exception>
    public TcpAssembler(int maxRanges = 32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRanges, 1);
        _starts = new int[maxRanges];
        _ends = new int[maxRanges];
        _touched = new long[maxRanges];
    }

    /// <summary>True when no range is held.</summary>
    public bool IsEmpty => _count == 0;

    /// <summary>The number of disjoint ranges held.</summary>
    public int RangeCount => _count;

    /// <summary>The most disjoint ranges held at once.</summary>
    public int MaxRanges => _starts.Length;

    /// <summary>
    /// Marks <c>[offset, offset + length)</c> as received, merging it with every range it overlaps
    /// or touches; the merged range becomes the most recent. An empty range changes nothing and
    /// returns true. Returns false, changing nothing, when the range touches none held and
    /// <see cref="MaxRanges"/> are held already.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The offset or length is negative, or their sum overflows.</exception>
    public bool Add(int offset, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, int.MaxValue - offset);
        if (length == 0)
        {
            return true;
        }

        int end = offset + length;

        // First range that ends at or after the new start (it may touch or overlap), then every
        // range from there that starts at or before the new end merges in.
        int first = 0;
        while (first < _count && _ends[first] < offset)
        {
            first++;
        }

        int last = first;
        while (last < _count && _starts[last] <= end)
        {
            last++;
        }

        int merged = last - first;
        if (merged == 0)
        {
            if (_count == _starts.Length)
            {
                return false;
            }

            Array.Copy(_starts, first, _starts, first + 1, _count - first);
            Array.Copy(_ends, first, _ends, first + 1, _count - first);
            Array.Copy(_touched, first, _touched, first + 1, _count - first);
            _starts[first] = offset;
            _ends[first] = end;
            _touched[first] = ++_clock;
            _count++;
            return true;
        }

        _starts[first] = Math.Min(_starts[first], offset);
        _ends[first] = Math.Max(_ends[last - 1], end);
        _touched[first] = ++_clock;
        if (merged > 1)
        {
            int removed = merged - 1;
            Array.Copy(_starts, last, _starts, first + 1, _count - last);
            Array.Copy(_ends, last, _ends, first + 1, _count - last);
            Array.Copy(_touched, last, _touched, first + 1, _count - last);
            _count -= removed;
        }

        return true;
    }

    /// <summary>
    /// The first <paramref name="count"/> bytes were delivered without being added (in-order data
    /// arriving while every range slot holds out-of-order data): every range moves down by that much.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A held range starts before <paramref name="count"/>, or it is negative.</exception>
    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_count > 0)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _starts[0]);
        }

        for (int i = 0; i < _count; i++)
        {
            _starts[i] -= count;
            _ends[i] -= count;
        }
    }

    /// <summary>
    /// When a range starts at offset 0 (the gap at the receive point is filled), removes it, moves
    /// every other range down by its length (the receive point advanced past it) and returns that
    /// length; otherwise returns 0.
    /// </summary>
    public int RemoveFront()
    {
        if (_count == 0 || _starts[0] != 0)
        {
            return 0;
        }

        int length = _ends[0];
        for (int i = 1; i < _count; i++)
        {
            _starts[i - 1] = _starts[i] - length;
            _ends[i - 1] = _ends[i] - length;
            _touched[i - 1] = _touched[i];
        }

        _count--;
        return length;
    }

    /// <summary>
    /// Writes the ranges as (start, end) offsets, the most recently added or extended first (for
    /// SACK blocks, RFC 2018 section 4), and returns how many: <c>min(destination.Length, RangeCount)</c>.
    /// </summary>
    public int GetRanges(Span<(int Start, int End)> destination)
    {
        int written = Math.Min(destination.Length, _count);
        long below = long.MaxValue;
        for (int k = 0; k < written; k++)
        {
            // Stamps are distinct, so the next one is the largest below the previous one.
            int best = -1;
            for (int i = 0; i < _count; i++)
            {
                if (_touched[i] < below && (best < 0 || _touched[i] > _touched[best]))
                {
                    best = i;
                }
            }

            destination[k] = (_starts[best], _ends[best]);
            below = _touched[best];
        }

        return written;
    }

    /// <summary>Forgets every range.</summary>
    public void Clear() => _count = 0;
}
