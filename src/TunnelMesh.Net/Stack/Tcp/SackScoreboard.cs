using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Stack.Tcp;

/// <summary>
/// The sender's SACK scoreboard (RFC 6675 section 4): which bytes above SND.UNA the receiver has
/// reported holding, and from that which holes count as lost, how much data is still in the
/// network (<see cref="Pipe"/>) and which segment loss recovery sends next
/// (<see cref="TryNextSegment"/>).
/// </summary>
/// <remarks>
/// The ranges are kept sorted and disjoint in a fixed array (no allocation after construction).
/// When more disjoint ranges arrive than fit, the highest are forgotten: forgetting a SACK only
/// makes the sender retransmit data the receiver already holds, never skip data it lacks.
/// Loss follows RFC 6675's IsLost: a byte is lost when more than (DupThresh - 1) * SMSS SACKed
/// bytes, or DupThresh discontiguous SACKed ranges, lie above it. Both counts only grow as the
/// sequence number falls, so one boundary splits every hole into a lost part below and a
/// not-yet-lost part above; <see cref="TryGetLossBoundary"/> computes it.
/// </remarks>
internal sealed class SackScoreboard
{
    private readonly int _maxRanges;
    private SeqNumber[] _starts = []; // allocated with the first SACK: idle connections stay small
    private SeqNumber[] _ends = [];
    private int _count;

    /// <summary>Creates an empty scoreboard that remembers at most <paramref name="maxRanges"/> ranges.</summary>
    public SackScoreboard(int maxRanges = TcpConstants.MaxScoreboardRanges)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRanges, 1);
        _maxRanges = maxRanges;
    }

    /// <summary>Whether no SACKed range is held.</summary>
    public bool IsEmpty => _count == 0;

    /// <summary>The number of disjoint SACKed ranges held.</summary>
    public int RangeCount => _count;

    /// <summary>The total number of SACKed bytes held.</summary>
    public long SackedBytes
    {
        get
        {
            long total = 0;
            for (int i = 0; i < _count; i++)
            {
                total += _ends[i] - _starts[i];
            }

            return total;
        }
    }

    /// <summary>One past the highest SACKed byte; only meaningful when not <see cref="IsEmpty"/>.</summary>
    public SeqNumber HighestSacked => _count == 0 ? default : _ends[_count - 1];

    /// <summary>Forgets every range (after an RTO, or when the connection resets its send state).</summary>
    public void Clear() => _count = 0;

    /// <summary>
    /// Applies a cumulative ACK and the SACK blocks that came with it. Blocks that are empty,
    /// inverted, below <paramref name="ack"/> (D-SACK, RFC 2883) or beyond
    /// <paramref name="sndNxt"/> are ignored or clipped.
    /// </summary>
    /// <returns>The number of bytes SACKed for the first time by this ACK.</returns>
    public long Update(SeqNumber ack, ReadOnlySpan<SackBlock> blocks, SeqNumber sndNxt)
    {
        DropBelow(ack);
        long added = 0;
        foreach (var block in blocks)
        {
            var left = new SeqNumber(block.Left);
            var right = new SeqNumber(block.Right);
            if (right <= left || right - left > int.MaxValue / 2)
            {
                continue;
            }

            if (left < ack)
            {
                left = ack;
            }

            if (right > sndNxt)
            {
                right = sndNxt;
            }

            if (right <= left)
            {
                continue;
            }

            added += Insert(left, right);
        }

        return added;
    }

    /// <summary>Whether the byte at <paramref name="seq"/> is SACKed.</summary>
    public bool IsSacked(SeqNumber seq)
    {
        for (int i = 0; i < _count; i++)
        {
            if (seq < _starts[i])
            {
                return false;
            }

            if (seq < _ends[i])
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>RFC 6675 IsLost: whether the unSACKed byte at <paramref name="seq"/> counts as lost.</summary>
    public bool IsLost(SeqNumber seq, int mss) => TryGetLossBoundary(mss, out var boundary) && seq < boundary && !IsSacked(seq);

    /// <summary>
    /// RFC 6675 SetPipe: the bytes between <paramref name="sndUna"/> and <paramref name="sndNxt"/>
    /// still in the network: each unSACKed byte that is not lost counts once, and each unSACKed
    /// byte at or below <paramref name="highRxt"/> (retransmitted) counts once more.
    /// </summary>
    /// <remarks>
    /// <paramref name="lostBelow"/> marks every unSACKed byte below it lost whatever the SACKs say
    /// (after a retransmission timeout, everything outstanding then is taken as lost).
    /// </remarks>
    public long Pipe(SeqNumber sndUna, SeqNumber sndNxt, SeqNumber highRxt, int mss, SeqNumber lostBelow)
    {
        if (sndNxt <= sndUna)
        {
            return 0;
        }

        if (!TryGetLossBoundary(mss, out var boundary) || boundary < sndUna)
        {
            boundary = sndUna;
        }

        boundary = SeqNumber.Max(boundary, lostBelow);

        var retransmittedEnd = highRxt + 1;
        long pipe = 0;
        var holeStart = sndUna;
        for (int i = 0; i <= _count; i++)
        {
            var holeEnd = i < _count ? _starts[i] : sndNxt;
            if (holeEnd > sndNxt)
            {
                holeEnd = sndNxt;
            }

            if (holeEnd > holeStart)
            {
                pipe += Overlap(holeStart, holeEnd, boundary, sndNxt);
                pipe += Overlap(holeStart, holeEnd, sndUna, retransmittedEnd);
            }

            if (i < _count && _ends[i] > holeStart)
            {
                holeStart = _ends[i];
            }
        }

        return pipe;
    }

    /// <summary>
    /// RFC 6675 NextSeg: the next segment loss recovery should retransmit, above
    /// <paramref name="highRxt"/>: the first lost hole (rule 1), or, when
    /// <paramref name="allowNotLost"/> is set because no new data may be sent, the first hole
    /// below the highest SACKed byte even if not yet lost (rule 3).
    /// </summary>
    /// <remarks>Holes below <paramref name="lostBelow"/> count as lost (see <see cref="Pipe"/>).</remarks>
    public bool TryNextSegment(SeqNumber sndUna, SeqNumber highRxt, int mss, bool allowNotLost, SeqNumber lostBelow, out SeqNumber start, out int length)
    {
        start = default;
        length = 0;
        SeqNumber limit = lostBelow;
        if (_count > 0)
        {
            if (allowNotLost)
            {
                limit = SeqNumber.Max(limit, _ends[_count - 1]);
            }
            else if (TryGetLossBoundary(mss, out var boundary))
            {
                limit = SeqNumber.Max(limit, boundary);
            }
        }

        var from = SeqNumber.Max(sndUna, highRxt + 1);
        var holeStart = sndUna;
        for (int i = 0; i <= _count && holeStart < limit; i++)
        {
            var holeEnd = i < _count ? SeqNumber.Min(_starts[i], limit) : limit;
            var candidate = SeqNumber.Max(holeStart, from);
            if (candidate < holeEnd)
            {
                start = candidate;
                length = Math.Min(mss, holeEnd - candidate);
                return true;
            }

            if (i < _count)
            {
                holeStart = SeqNumber.Max(holeStart, _ends[i]);
            }
        }

        return false;
    }

    /// <summary>
    /// The sequence number below which every unSACKed byte is lost: the larger of the start of
    /// the DupThresh-th highest range and the point with more than (DupThresh - 1) * SMSS SACKed
    /// bytes above it. False when neither is reached (nothing is lost yet).
    /// </summary>
    internal bool TryGetLossBoundary(int mss, out SeqNumber boundary)
    {
        boundary = default;
        bool found = false;
        if (_count >= TcpConstants.DupThresh)
        {
            boundary = _starts[_count - TcpConstants.DupThresh];
            found = true;
        }

        long threshold = ((TcpConstants.DupThresh - 1) * (long)mss) + 1;
        long above = 0;
        for (int i = _count - 1; i >= 0; i--)
        {
            long size = _ends[i] - _starts[i];
            if (above + size >= threshold)
            {
                var point = _ends[i] - (int)(threshold - above);
                boundary = found ? SeqNumber.Max(boundary, point) : point;
                return true;
            }

            above += size;
        }

        return found;
    }

    private static long Overlap(SeqNumber aStart, SeqNumber aEnd, SeqNumber bStart, SeqNumber bEnd)
    {
        var start = SeqNumber.Max(aStart, bStart);
        var end = SeqNumber.Min(aEnd, bEnd);
        return end > start ? end - start : 0;
    }

    private void DropBelow(SeqNumber ack)
    {
        int drop = 0;
        while (drop < _count && _ends[drop] <= ack)
        {
            drop++;
        }

        if (drop > 0)
        {
            Array.Copy(_starts, drop, _starts, 0, _count - drop);
            Array.Copy(_ends, drop, _ends, 0, _count - drop);
            _count -= drop;
        }

        if (_count > 0 && _starts[0] < ack)
        {
            _starts[0] = ack;
        }
    }

    private long Insert(SeqNumber left, SeqNumber right)
    {
        // Find the first range that ends at or after left (it may touch or overlap).
        int i = 0;
        while (i < _count && _ends[i] < left)
        {
            i++;
        }

        // Ranges i..j-1 overlap or touch [left, right): merge them all into one.
        int j = i;
        long covered = 0;
        var mergedStart = left;
        var mergedEnd = right;
        while (j < _count && _starts[j] <= right)
        {
            covered += Overlap(_starts[j], _ends[j], left, right);
            mergedStart = SeqNumber.Min(mergedStart, _starts[j]);
            mergedEnd = SeqNumber.Max(mergedEnd, _ends[j]);
            j++;
        }

        long added = (right - left) - covered;
        int merged = j - i;
        if (merged == 0)
        {
            if (_starts.Length == 0)
            {
                _starts = new SeqNumber[_maxRanges];
                _ends = new SeqNumber[_maxRanges];
            }

            if (_count == _starts.Length)
            {
                if (i == _count)
                {
                    return 0; // higher than everything held and no room: forget it
                }

                _count--; // forget the highest range to make room
            }

            Array.Copy(_starts, i, _starts, i + 1, _count - i);
            Array.Copy(_ends, i, _ends, i + 1, _count - i);
            _count++;
        }
        else if (merged > 1)
        {
            Array.Copy(_starts, j, _starts, i + 1, _count - j);
            Array.Copy(_ends, j, _ends, i + 1, _count - j);
            _count -= merged - 1;
        }

        _starts[i] = mergedStart;
        _ends[i] = mergedEnd;
        return added;
    }
}
