using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Wire;

/// <summary>
/// Reassembles IPv4 fragments (RFC 791, RFC 815) into whole datagrams, keyed by source, destination,
/// protocol and identification. Not thread-safe: one owner (the stack) calls it.
/// </summary>
/// <remarks>
/// <para>Each datagram in progress owns one pooled <see cref="PacketBuffer"/>; fragment payloads are
/// copied into it at their offsets, so the caller keeps the fragment's buffer. The reassembled
/// datagram has a plain 20-byte header taken from the first fragment (its options, if any, are not
/// carried over: nothing above this layer reads them), and at least
/// <see cref="PacketBuffer.HeadRoom"/> bytes free in front.</para>
/// <para>Limits, each drop counted as <see cref="DropReason.Fragment"/> (one per fragment discarded):
/// at most <c>maxDatagrams</c> datagrams in progress (a fragment of a new datagram beyond that is
/// dropped, so old datagrams are not evicted by a flood of new ids); at most
/// <c>maxFragmentsPerDatagram</c> fragments per datagram, duplicates included; a reassembled size of
/// at most 65535 bytes; a datagram not complete within the timeout (30 s by default) is discarded.
/// Overlapping fragments whose bytes agree (e.g. retransmitted duplicates) are accepted; overlaps
/// whose bytes conflict, or a second "last fragment" with another end, discard the whole datagram.
/// A fragment other than the last whose length is not a multiple of 8 is dropped as malformed.</para>
/// </remarks>
internal sealed class Ipv4Reassembler
{
    /// <summary>Default limit on datagrams in progress.</summary>
    public const int DefaultMaxDatagrams = 64;

    /// <summary>Default limit on fragments per datagram.</summary>
    public const int DefaultMaxFragmentsPerDatagram = 64;

    /// <summary>The largest reassembled payload: 65535 minus a 20-byte header.</summary>
    public const int MaxPayloadLength = Ipv4Packet.MaxPacketLength - Ipv4Packet.MinHeaderLength;

    // Payload byte 0 of a datagram in progress sits here in its buffer; the header goes in front.
    private const int DataStart = PacketBuffer.HeadRoom + Ipv4Packet.MinHeaderLength;

    private readonly PacketBufferPool _pool;
    private readonly DropCounters _drops;
    private readonly TimeProvider _time;
    private readonly int _maxDatagrams;
    private readonly int _maxFragments;
    private readonly TimeSpan _timeout;
    private readonly Dictionary<FragmentKey, Entry> _entries = new();
    private readonly Stack<Entry> _freeEntries = new();

    /// <summary>Creates a reassembler.</summary>
    public Ipv4Reassembler(
        PacketBufferPool pool,
        DropCounters drops,
        TimeProvider time,
        int maxDatagrams = DefaultMaxDatagrams,
        int maxFragmentsPerDatagram = DefaultMaxFragmentsPerDatagram,
        TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(drops);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDatagrams, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxFragmentsPerDatagram, 2);
        _pool = pool;
        _drops = drops;
        _time = time;
        _maxDatagrams = maxDatagrams;
        _maxFragments = maxFragmentsPerDatagram;
        _timeout = timeout ?? TimeSpan.FromSeconds(30);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_timeout, TimeSpan.Zero, nameof(timeout));
    }

    /// <summary>The number of datagrams in progress.</summary>
    public int PendingCount => _entries.Count;

    /// <summary>
    /// Adds one fragment (a packet with <see cref="Ipv4Packet.IsFragment"/> set). Its payload is
    /// copied; the caller keeps its buffer. Returns true, with the whole datagram in a pooled buffer
    /// the caller then owns, when this fragment completes one. <paramref name="timestamp"/> is
    /// <see cref="TimeProvider.GetTimestamp"/> of the reassembler's time provider.
    /// </summary>
    public bool TryAdd(Ipv4Packet fragment, long timestamp, [NotNullWhen(true)] out PacketBuffer? datagram)
    {
        datagram = null;
        ExpireStale(timestamp);

        var data = fragment.Payload;
        int start = fragment.FragmentOffset;
        int end = start + data.Length;
        bool last = !fragment.MoreFragments;
        if ((!last && (data.Length & 7) != 0) || end > MaxPayloadLength)
        {
            _drops.Increment(DropReason.Fragment);
            return false;
        }

        var key = new FragmentKey(fragment.Source, fragment.Destination, fragment.Protocol, fragment.Identification);
        if (!_entries.TryGetValue(key, out var entry))
        {
            if (_entries.Count >= _maxDatagrams)
            {
                _drops.Increment(DropReason.Fragment);
                return false;
            }

            entry = _freeEntries.Count > 0 ? _freeEntries.Pop() : new Entry();
            entry.Start(_pool.Rent(), timestamp);
            _entries.Add(key, entry);
        }

        entry.Fragments++;
        if (entry.Fragments > _maxFragments || !entry.TryInsert(data, start, end, last))
        {
            Discard(key, entry);
            return false;
        }

        if (start == 0)
        {
            fragment.Buffer[..Ipv4Packet.MinHeaderLength].CopyTo(entry.Buffer!.Array.AsSpan(DataStart - Ipv4Packet.MinHeaderLength));
        }

        if (!entry.IsComplete)
        {
            return false;
        }

        var buffer = entry.Buffer!;
        int payloadLength = entry.TotalLength;
        _entries.Remove(key);
        entry.Clear();
        _freeEntries.Push(entry);

        buffer.Offset = DataStart - Ipv4Packet.MinHeaderLength;
        buffer.Length = Ipv4Packet.MinHeaderLength + payloadLength;
        var header = buffer.Span;
        header[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(2, 2), (ushort)buffer.Length);
        // Keep DF, clear MF and the offset.
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(6, 2), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(header.Slice(6, 2)) & 0x4000));
        Ipv4Packet.TryCreate(header, out var whole);
        whole.FillHeaderChecksum();
        datagram = buffer;
        return true;
    }

    /// <summary>Discards every datagram in progress for longer than the timeout, counting its fragments.</summary>
    public void ExpireStale(long timestamp)
    {
        if (_entries.Count == 0)
        {
            return;
        }

        foreach (var (key, entry) in _entries)
        {
            if (_time.GetElapsedTime(entry.Created, timestamp) >= _timeout)
            {
                // Removing the current entry while enumerating is allowed for Dictionary.
                Discard(key, entry);
            }
        }
    }

    /// <summary>Discards every datagram in progress (without counting) and returns their buffers.</summary>
    public void Clear()
    {
        foreach (var entry in _entries.Values)
        {
            entry.Buffer?.Return();
            entry.Clear();
        }

        _entries.Clear();
    }

    private void Discard(FragmentKey key, Entry entry)
    {
        _drops.Add(DropReason.Fragment, entry.Fragments);
        _entries.Remove(key);
        entry.Buffer?.Return();
        entry.Clear();
        _freeEntries.Push(entry);
    }

    private readonly record struct FragmentKey(uint Source, uint Destination, byte Protocol, ushort Identification);

    /// <summary>One datagram in progress: its buffer and the byte ranges received so far, merged and sorted.</summary>
    private sealed class Entry
    {
        private readonly List<(int Start, int End)> _ranges = new(4);

        public PacketBuffer? Buffer { get; private set; }

        public long Created { get; private set; }

        public int Fragments { get; set; }

        /// <summary>Payload length once the last fragment is in, else -1.</summary>
        public int TotalLength { get; private set; } = -1;

        public bool IsComplete => TotalLength >= 0 && _ranges.Count == 1 && _ranges[0].Start == 0 && _ranges[0].End == TotalLength;

        public void Start(PacketBuffer buffer, long created)
        {
            Buffer = buffer;
            Created = created;
            Fragments = 0;
            TotalLength = -1;
            _ranges.Clear();
        }

        public void Clear()
        {
            Buffer = null;
            _ranges.Clear();
            TotalLength = -1;
            Fragments = 0;
        }

        /// <summary>Copies the fragment in; false when it conflicts with what is already there.</summary>
        public bool TryInsert(ReadOnlySpan<byte> data, int start, int end, bool last)
        {
            int highest = _ranges.Count == 0 ? 0 : _ranges[^1].End;
            if (last)
            {
                if ((TotalLength >= 0 && TotalLength != end) || end < highest)
                {
                    return false;
                }

                TotalLength = end;
            }
            else if (TotalLength >= 0 && end > TotalLength)
            {
                return false;
            }

            var stored = Buffer!.Array.AsSpan(DataStart);
            foreach (var (s, e) in _ranges)
            {
                int from = Math.Max(s, start);
                int to = Math.Min(e, end);
                if (from < to && !stored[from..to].SequenceEqual(data[(from - start)..(to - start)]))
                {
                    return false;
                }
            }

            data.CopyTo(stored[start..]);
            if (start < end)
            {
                Merge(start, end);
            }

            return true;
        }

        private void Merge(int start, int end)
        {
            // Insert in order, then coalesce touching or overlapping neighbours.
            int i = 0;
            while (i < _ranges.Count && _ranges[i].Start < start)
            {
                i++;
            }

            _ranges.Insert(i, (start, end));
            int j = Math.Max(0, i - 1);
            while (j + 1 < _ranges.Count)
            {
                var a = _ranges[j];
                var b = _ranges[j + 1];
                if (b.Start <= a.End)
                {
                    _ranges[j] = (a.Start, Math.Max(a.End, b.End));
                    _ranges.RemoveAt(j + 1);
                }
                else if (b.Start > end)
                {
                    break;
                }
                else
                {
                    j++;
                }
            }
        }
    }
}
