using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace TunnelMesh.Net.Wire;

/// <summary>The control bits of a TCP header (byte 13; RFC 9293 section 3.1, RFC 3168 for ECE/CWR).</summary>
[Flags]
internal enum TcpFlags : byte
{
    /// <summary>No control bit set.</summary>
    None = 0,

    /// <summary>No more data from sender.</summary>
    Fin = 0x01,

    /// <summary>Synchronize sequence numbers.</summary>
    Syn = 0x02,

    /// <summary>Reset the connection.</summary>
    Rst = 0x04,

    /// <summary>Push function.</summary>
    Psh = 0x08,

    /// <summary>The acknowledgment number field is significant.</summary>
    Ack = 0x10,

    /// <summary>The urgent pointer field is significant.</summary>
    Urg = 0x20,

    /// <summary>ECN-Echo (RFC 3168).</summary>
    Ece = 0x40,

    /// <summary>Congestion Window Reduced (RFC 3168).</summary>
    Cwr = 0x80,
}

/// <summary>
/// One SACK block (RFC 2018): the received range <c>[Left, Right)</c> in sequence space, as the raw
/// 32-bit numbers carried on the wire (no wrap handling here).
/// </summary>
/// <param name="Left">The first sequence number of the block.</param>
/// <param name="Right">The sequence number just after the last byte of the block.</param>
internal readonly record struct SackBlock(uint Left, uint Right);

/// <summary>
/// A zero-copy view of a TCP segment (RFC 9293 section 3.1): the fixed header, the options, the
/// payload. The view covers the whole buffer it was created over (TCP has no length field: the
/// segment is the IP payload). Created only through <see cref="TryCreate"/>, which checks the data
/// offset once; after that no accessor can fail.
/// </summary>
/// <remarks>
/// Layout: <c>0</c> source port, <c>2</c> destination port, <c>4</c> sequence number, <c>8</c>
/// acknowledgment number, <c>12</c> data offset (high 4 bits), <c>13</c> flags, <c>14</c> window,
/// <c>16</c> checksum, <c>18</c> urgent pointer, <c>20</c> options up to data offset * 4. The
/// checksum covers the IPv4 pseudo-header, so verifying and filling take the addresses.
/// </remarks>
internal readonly ref struct TcpSegment
{
    /// <summary>Length of a header without options.</summary>
    public const int MinHeaderLength = 20;

    /// <summary>Length of a header with the most options the data offset allows (15 words).</summary>
    public const int MaxHeaderLength = 60;

    private const int ChecksumOffset = 16;

    private readonly Span<byte> _buffer;

    private TcpSegment(Span<byte> buffer) => _buffer = buffer;

    /// <summary>
    /// Creates a view over <paramref name="buffer"/>, the whole segment (the IP payload), when it is
    /// at least 20 bytes long and its data offset is at least 5 words and within the buffer. The
    /// checksum and the options are not checked here. Never throws.
    /// </summary>
    public static bool TryCreate(Span<byte> buffer, out TcpSegment segment)
    {
        segment = default;
        if (buffer.Length < MinHeaderLength)
        {
            return false;
        }

        int headerLength = (buffer[12] >> 4) * 4;
        if (headerLength < MinHeaderLength || headerLength > buffer.Length)
        {
            return false;
        }

        segment = new TcpSegment(buffer);
        return true;
    }

    /// <summary>The whole segment, header and payload.</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>The source port.</summary>
    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(_buffer[..2]);

    /// <summary>The destination port.</summary>
    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(2, 2));

    /// <summary>The sequence number of the first byte of the segment (of the SYN, when set).</summary>
    public uint SequenceNumber => BinaryPrimitives.ReadUInt32BigEndian(_buffer.Slice(4, 4));

    /// <summary>The acknowledgment number (meaningful when <see cref="TcpFlags.Ack"/> is set).</summary>
    public uint AcknowledgmentNumber => BinaryPrimitives.ReadUInt32BigEndian(_buffer.Slice(8, 4));

    /// <summary>The header length in bytes (data offset * 4), options included.</summary>
    public int HeaderLength => (_buffer[12] >> 4) * 4;

    /// <summary>The control bits.</summary>
    public TcpFlags Flags => (TcpFlags)_buffer[13];

    /// <summary>The window field as carried (not scaled).</summary>
    public ushort Window => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(14, 2));

    /// <summary>The checksum field as carried.</summary>
    public ushort Checksum
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(ChecksumOffset, 2));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(ChecksumOffset, 2), value);
    }

    /// <summary>The urgent pointer field (meaningful when <see cref="TcpFlags.Urg"/> is set).</summary>
    public ushort UrgentPointer => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(18, 2));

    /// <summary>The option bytes between the fixed header and the payload (possibly empty).</summary>
    public ReadOnlySpan<byte> OptionBytes => _buffer[MinHeaderLength..HeaderLength];

    /// <summary>The payload (the bytes after the header).</summary>
    public Span<byte> Payload => _buffer[HeaderLength..];

    /// <summary>
    /// The sequence space the segment occupies: payload length, plus one for SYN and one for FIN
    /// (SEG.LEN in RFC 9293 section 3.4).
    /// </summary>
    public int SequenceLength
    {
        get
        {
            var flags = Flags;
            return _buffer.Length - HeaderLength
                + ((flags & TcpFlags.Syn) != 0 ? 1 : 0)
                + ((flags & TcpFlags.Fin) != 0 ? 1 : 0);
        }
    }

    /// <summary>
    /// True when the checksum is right for the IPv4 pseudo-header of <paramref name="source"/> and
    /// <paramref name="destination"/> (host order). A segment longer than 65535 bytes cannot be
    /// carried by IPv4 and is reported as invalid.
    /// </summary>
    public bool VerifyChecksumIpv4(uint source, uint destination)
    {
        if (_buffer.Length > ushort.MaxValue)
        {
            return false;
        }

        uint pseudo = InternetChecksum.PseudoHeaderIpv4(source, destination, IpProtocol.Tcp, (ushort)_buffer.Length);
        return InternetChecksum.IsValid(_buffer, pseudo);
    }

    /// <summary>
    /// Parses the options (see <see cref="TcpOptions.TryParse"/>). False when they are malformed,
    /// in which case <paramref name="options"/> holds what was read before the fault.
    /// </summary>
    public bool TryParseOptions(out TcpOptions options) => TcpOptions.TryParse(OptionBytes, out options);

    /// <summary>
    /// Computes the checksum of <paramref name="segment"/> (header and payload, header already
    /// written) with the IPv4 pseudo-header of <paramref name="source"/> and
    /// <paramref name="destination"/> (host order) and writes it into the checksum field.
    /// </summary>
    /// <exception cref="ArgumentException">The span is shorter than 20 bytes or longer than 65535.</exception>
    public static void FillChecksumIpv4(Span<byte> segment, uint source, uint destination)
    {
        if (segment.Length < MinHeaderLength || segment.Length > ushort.MaxValue)
        {
            ThrowBadSegmentLength(nameof(segment));
        }

        var field = segment.Slice(ChecksumOffset, 2);
        field.Clear();
        uint pseudo = InternetChecksum.PseudoHeaderIpv4(source, destination, IpProtocol.Tcp, (ushort)segment.Length);
        BinaryPrimitives.WriteUInt16BigEndian(field, InternetChecksum.Finish(InternetChecksum.Accumulate(segment, pseudo)));
    }

    [DoesNotReturn]
    private static void ThrowBadSegmentLength(string name) =>
        throw new ArgumentException("A TCP segment is 20 to 65535 bytes long.", name);
}

/// <summary>Inline storage for the SACK blocks of one <see cref="TcpOptions"/> (no allocation).</summary>
[InlineArray(TcpOptions.MaxSackBlocks)]
internal struct SackBlockBuffer
{
    private SackBlock _element;
}

/// <summary>
/// The TCP options the stack understands, parsed from or to be written into a header: MSS
/// (RFC 9293 section 3.7.1), window scale and timestamps (RFC 7323), SACK-permitted and SACK
/// blocks (RFC 2018). A mutable value type that allocates nothing; start from <see cref="None"/>.
/// </summary>
/// <remarks>
/// <para><c>default(TcpOptions)</c> is not "no options": its <see cref="WindowScale"/> is 0, which
/// means "window scale present with shift 0". Use <see cref="None"/>.</para>
/// <para>SACK blocks live in inline storage. They are read through <see cref="SackBlocks"/> (a span
/// over this struct's own storage: it is valid only as long as the variable it was taken from, and
/// an <see langword="in"/>/<see langword="ref"/> parameter or a local works; a property returning a
/// copy does not) or <see cref="GetSackBlock"/>, and written with <see cref="SetSackBlocks"/>.</para>
/// </remarks>
internal struct TcpOptions : IEquatable<TcpOptions>
{
    /// <summary>The most SACK blocks an option can carry in 40 option bytes (2 + 4 * 8 = 34).</summary>
    public const int MaxSackBlocks = 4;

    /// <summary>The largest window scale shift (RFC 7323 section 2.3); larger received values are clamped to it.</summary>
    public const int MaxWindowScale = 14;

    /// <summary>Option kind: end of option list.</summary>
    public const byte KindEndOfList = 0;

    /// <summary>Option kind: no-operation (padding).</summary>
    public const byte KindNoOperation = 1;

    /// <summary>Option kind: maximum segment size (length 4).</summary>
    public const byte KindMaxSegmentSize = 2;

    /// <summary>Option kind: window scale (length 3).</summary>
    public const byte KindWindowScale = 3;

    /// <summary>Option kind: SACK permitted (length 2).</summary>
    public const byte KindSackPermitted = 4;

    /// <summary>Option kind: SACK blocks (length 2 + 8n).</summary>
    public const byte KindSack = 5;

    /// <summary>Option kind: timestamps (length 10).</summary>
    public const byte KindTimestamps = 8;

    /// <summary>The maximum segment size the peer can receive; 0 when absent (a received 0 also reads as absent).</summary>
    public ushort MaxSegmentSize;

    /// <summary>The window scale shift (0..14); -1 when absent. Received values above 14 are clamped to 14.</summary>
    public int WindowScale;

    /// <summary>The SACK-permitted option (valid in SYNs).</summary>
    public bool SackPermitted;

    /// <summary>Whether the timestamps option is present (then <see cref="TimestampValue"/> and <see cref="TimestampEcho"/> hold it).</summary>
    public bool HasTimestamps;

    /// <summary>TSval: the sender's timestamp clock.</summary>
    public uint TimestampValue;

    /// <summary>TSecr: the echoed timestamp.</summary>
    public uint TimestampEcho;

    /// <summary>How many SACK blocks are present (0..4); set through <see cref="SetSackBlocks"/>.</summary>
    public int SackBlockCount;

    private SackBlockBuffer _sackBlocks;

    /// <summary>No options: window scale -1, everything else absent.</summary>
    public static TcpOptions None => new() { WindowScale = -1 };

    /// <summary>
    /// The SACK blocks present, first block first (the first one reports the most recent segment,
    /// RFC 2018 section 4). A span over this struct's inline storage: see the remarks on the type.
    /// </summary>
    [UnscopedRef]
    public readonly ReadOnlySpan<SackBlock> SackBlocks => ((ReadOnlySpan<SackBlock>)_sackBlocks)[..ClampedSackCount];

    private readonly int ClampedSackCount => Math.Clamp(SackBlockCount, 0, MaxSackBlocks);

    /// <summary>The SACK block at <paramref name="index"/> (0 &lt;= index &lt; <see cref="SackBlockCount"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The index is not below the block count.</exception>
    public readonly SackBlock GetSackBlock(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, ClampedSackCount);
        return _sackBlocks[index];
    }

    /// <summary>
    /// Replaces the SACK blocks with the first (at most four) of <paramref name="blocks"/> and sets
    /// <see cref="SackBlockCount"/>. <see cref="TcpHeader.Emit"/> may write fewer if the header
    /// has no room (see <see cref="TcpHeader.GetHeaderLength"/>).
    /// </summary>
    public void SetSackBlocks(ReadOnlySpan<SackBlock> blocks)
    {
        int count = Math.Min(blocks.Length, MaxSackBlocks);
        blocks[..count].CopyTo(_sackBlocks);
        SackBlockCount = count;
    }

    /// <summary>
    /// Parses TCP option bytes (the bytes between the fixed header and the payload). Unknown kinds
    /// are skipped by their length; end-of-list stops parsing; a later copy of an option replaces an
    /// earlier one. Returns false when the options are malformed: a length byte missing, below 2 or
    /// running past the end; MSS, window scale, SACK-permitted or timestamps with other than their
    /// fixed length (4, 3, 2, 10); SACK with a length other than 2 + 8n for n = 1..4. Never throws.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> optionBytes, out TcpOptions options)
    {
        options = None;
        int i = 0;
        while (i < optionBytes.Length)
        {
            byte kind = optionBytes[i];
            if (kind == KindEndOfList)
            {
                return true;
            }

            if (kind == KindNoOperation)
            {
                i++;
                continue;
            }

            if (i + 1 >= optionBytes.Length)
            {
                return false;
            }

            int length = optionBytes[i + 1];
            if (length < 2 || length > optionBytes.Length - i)
            {
                return false;
            }

            var value = optionBytes.Slice(i + 2, length - 2);
            switch (kind)
            {
                case KindMaxSegmentSize:
                    if (length != 4)
                    {
                        return false;
                    }

                    options.MaxSegmentSize = BinaryPrimitives.ReadUInt16BigEndian(value);
                    break;
                case KindWindowScale:
                    if (length != 3)
                    {
                        return false;
                    }

                    options.WindowScale = Math.Min((int)value[0], MaxWindowScale);
                    break;
                case KindSackPermitted:
                    if (length != 2)
                    {
                        return false;
                    }

                    options.SackPermitted = true;
                    break;
                case KindTimestamps:
                    if (length != 10)
                    {
                        return false;
                    }

                    options.HasTimestamps = true;
                    options.TimestampValue = BinaryPrimitives.ReadUInt32BigEndian(value);
                    options.TimestampEcho = BinaryPrimitives.ReadUInt32BigEndian(value[4..]);
                    break;
                case KindSack:
                    // 40 option bytes hold at most 4 blocks, so n <= 4 follows from the bounds check.
                    if (length < 10 || (length - 2) % 8 != 0)
                    {
                        return false;
                    }

                    int count = (length - 2) / 8;
                    for (int b = 0; b < count; b++)
                    {
                        options._sackBlocks[b] = new SackBlock(
                            BinaryPrimitives.ReadUInt32BigEndian(value.Slice(b * 8, 4)),
                            BinaryPrimitives.ReadUInt32BigEndian(value.Slice(b * 8 + 4, 4)));
                    }

                    options.SackBlockCount = count;
                    break;
                default:
                    break;
            }

            i += length;
        }

        return true;
    }

    /// <summary>Equal when every present option is equal (SACK blocks compared up to <see cref="SackBlockCount"/>).</summary>
    public readonly bool Equals(TcpOptions other) =>
        MaxSegmentSize == other.MaxSegmentSize
        && WindowScale == other.WindowScale
        && SackPermitted == other.SackPermitted
        && HasTimestamps == other.HasTimestamps
        && TimestampValue == other.TimestampValue
        && TimestampEcho == other.TimestampEcho
        && SackBlockCount == other.SackBlockCount
        && SackBlocks.SequenceEqual(other.SackBlocks);

    /// <inheritdoc/>
    public override readonly bool Equals(object? obj) => obj is TcpOptions other && Equals(other);

    /// <inheritdoc/>
    public override readonly int GetHashCode() =>
        HashCode.Combine(MaxSegmentSize, WindowScale, SackPermitted, HasTimestamps, TimestampValue, TimestampEcho, SackBlockCount);

    /// <summary>Value equality (see <see cref="Equals(TcpOptions)"/>).</summary>
    public static bool operator ==(TcpOptions left, TcpOptions right) => left.Equals(right);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(TcpOptions left, TcpOptions right) => !left.Equals(right);

    /// <summary>A readable summary, for test output and logs.</summary>
    public override readonly string ToString()
    {
        var text = new System.Text.StringBuilder();
        text.Append("mss=").Append(MaxSegmentSize).Append(" ws=").Append(WindowScale)
            .Append(" sackOK=").Append(SackPermitted);
        if (HasTimestamps)
        {
            text.Append(" ts=").Append(TimestampValue).Append('/').Append(TimestampEcho);
        }

        foreach (var block in SackBlocks)
        {
            text.Append(" sack=").Append(block.Left).Append('-').Append(block.Right);
        }

        return text.ToString();
    }
}

/// <summary>
/// The fixed fields of a TCP header. <see cref="Emit"/> writes them with options in the layout
/// Linux uses; the checksum is filled afterwards with <see cref="TcpSegment.FillChecksumIpv4"/>
/// once the payload is in place.
/// </summary>
/// <param name="SourcePort">Source port.</param>
/// <param name="DestinationPort">Destination port.</param>
/// <param name="SequenceNumber">Sequence number.</param>
/// <param name="AcknowledgmentNumber">Acknowledgment number (written as is, even without ACK).</param>
/// <param name="Flags">Control bits.</param>
/// <param name="Window">Window field (already scaled down).</param>
internal readonly record struct TcpHeader(
    ushort SourcePort, ushort DestinationPort, uint SequenceNumber, uint AcknowledgmentNumber, TcpFlags Flags, ushort Window)
{
    private const int MaxOptionLength = TcpSegment.MaxHeaderLength - TcpSegment.MinHeaderLength;

    /// <summary>Reads the fixed fields of a validated segment.</summary>
    public static TcpHeader Parse(TcpSegment segment) =>
        new(segment.SourcePort, segment.DestinationPort, segment.SequenceNumber, segment.AcknowledgmentNumber, segment.Flags, segment.Window);

    /// <summary>
    /// The header length <see cref="Emit"/> writes for <paramref name="options"/>: 20 bytes plus
    /// the options, each laid out to a multiple of 4 bytes. SACK blocks that do not fit in 40 option
    /// bytes are left out (with timestamps at most 3 fit; with MSS, window scale, SACK-permitted and
    /// timestamps together, 2).
    /// </summary>
    public static int GetHeaderLength(in TcpOptions options)
    {
        int fixedOptions = GetFixedOptionsLength(options);
        return TcpSegment.MinHeaderLength + fixedOptions + SackOptionLength(FittingSackBlocks(options, fixedOptions));
    }

    /// <summary>
    /// Writes the header and <paramref name="options"/> at the start of <paramref name="segment"/>
    /// (checksum and urgent pointer zero) and returns the header length, equal to
    /// <see cref="GetHeaderLength"/>. Options follow Linux's <c>tcp_options_write</c>: MSS; then
    /// SACK-permitted with timestamps, or NOP NOP timestamps; then NOP window scale; then NOP NOP
    /// SACK-permitted when there are no timestamps; then NOP NOP SACK blocks. A SYN from Linux is thus
    /// MSS(4) SACKOK(2) TS(10) NOP WS(3), 20 bytes; a data segment NOP NOP TS(10).
    /// </summary>
    /// <remarks>A window scale above 14 is written as 14.</remarks>
    /// <exception cref="ArgumentException">The span is shorter than the header.</exception>
    public int Emit(Span<byte> segment, in TcpOptions options)
    {
        int fixedOptions = GetFixedOptionsLength(options);
        int sackCount = FittingSackBlocks(options, fixedOptions);
        int headerLength = TcpSegment.MinHeaderLength + fixedOptions + SackOptionLength(sackCount);
        if (segment.Length < headerLength)
        {
            ThrowTooShort(nameof(segment));
        }

        var header = segment[..headerLength];
        BinaryPrimitives.WriteUInt16BigEndian(header[..2], SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(2, 2), DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(header.Slice(4, 4), SequenceNumber);
        BinaryPrimitives.WriteUInt32BigEndian(header.Slice(8, 4), AcknowledgmentNumber);
        header[12] = (byte)(headerLength / 4 << 4);
        header[13] = (byte)Flags;
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(14, 2), Window);
        header.Slice(16, 4).Clear();

        var o = header[TcpSegment.MinHeaderLength..];
        if (options.MaxSegmentSize != 0)
        {
            o[0] = TcpOptions.KindMaxSegmentSize;
            o[1] = 4;
            BinaryPrimitives.WriteUInt16BigEndian(o.Slice(2, 2), options.MaxSegmentSize);
            o = o[4..];
        }

        if (options.HasTimestamps)
        {
            if (options.SackPermitted)
            {
                o[0] = TcpOptions.KindSackPermitted;
                o[1] = 2;
            }
            else
            {
                o[0] = TcpOptions.KindNoOperation;
                o[1] = TcpOptions.KindNoOperation;
            }

            o[2] = TcpOptions.KindTimestamps;
            o[3] = 10;
            BinaryPrimitives.WriteUInt32BigEndian(o.Slice(4, 4), options.TimestampValue);
            BinaryPrimitives.WriteUInt32BigEndian(o.Slice(8, 4), options.TimestampEcho);
            o = o[12..];
        }

        if (options.WindowScale >= 0)
        {
            o[0] = TcpOptions.KindNoOperation;
            o[1] = TcpOptions.KindWindowScale;
            o[2] = 3;
            o[3] = (byte)Math.Min(options.WindowScale, TcpOptions.MaxWindowScale);
            o = o[4..];
        }

        if (options.SackPermitted && !options.HasTimestamps)
        {
            o[0] = TcpOptions.KindNoOperation;
            o[1] = TcpOptions.KindNoOperation;
            o[2] = TcpOptions.KindSackPermitted;
            o[3] = 2;
            o = o[4..];
        }

        if (sackCount > 0)
        {
            o[0] = TcpOptions.KindNoOperation;
            o[1] = TcpOptions.KindNoOperation;
            o[2] = TcpOptions.KindSack;
            o[3] = (byte)(2 + 8 * sackCount);
            var blocks = options.SackBlocks;
            for (int b = 0; b < sackCount; b++)
            {
                BinaryPrimitives.WriteUInt32BigEndian(o.Slice(4 + b * 8, 4), blocks[b].Left);
                BinaryPrimitives.WriteUInt32BigEndian(o.Slice(8 + b * 8, 4), blocks[b].Right);
            }
        }

        return headerLength;
    }

    /// <summary>Bytes taken by every option except the SACK blocks (all multiples of 4).</summary>
    private static int GetFixedOptionsLength(in TcpOptions options) =>
        (options.MaxSegmentSize != 0 ? 4 : 0)
        + (options.HasTimestamps ? 12 : 0)
        + (options.WindowScale >= 0 ? 4 : 0)
        + (options.SackPermitted && !options.HasTimestamps ? 4 : 0);

    /// <summary>How many of the SACK blocks fit after <paramref name="fixedOptions"/> bytes (NOP NOP kind length, 8 per block).</summary>
    private static int FittingSackBlocks(in TcpOptions options, int fixedOptions)
    {
        int count = options.SackBlocks.Length;
        int room = (MaxOptionLength - fixedOptions - 4) / 8;
        return Math.Max(0, Math.Min(count, room));
    }

    private static int SackOptionLength(int blocks) => blocks == 0 ? 0 : 4 + 8 * blocks;

    [DoesNotReturn]
    private static void ThrowTooShort(string name) =>
        throw new ArgumentException("The span is shorter than the TCP header with its options.", name);
}
