using System.Buffers.Binary;

namespace TunnelMesh.Net.Wire;

/// <summary>
/// A zero-copy view of an IPv4 packet (RFC 791) over a span. Created only through
/// <see cref="TryCreate"/>, which checks the version, header length and total length once; after
/// that no accessor can fail. The view covers exactly <see cref="TotalLength"/> bytes: a buffer that
/// is longer (WireGuard pads plaintext to a multiple of 16) is cut to the length the header states.
/// </summary>
/// <remarks>
/// Layout: <c>0</c> version/IHL, <c>1</c> DSCP/ECN, <c>2</c> total length, <c>4</c> identification,
/// <c>6</c> flags/fragment offset, <c>8</c> TTL, <c>9</c> protocol, <c>10</c> header checksum,
/// <c>12</c> source, <c>16</c> destination, <c>20</c> options up to IHL*4. Setters write through to
/// the underlying bytes and do not update the header checksum (call <see cref="FillHeaderChecksum"/>).
/// </remarks>
internal readonly ref struct Ipv4Packet
{
    /// <summary>Length of a header without options.</summary>
    public const int MinHeaderLength = 20;

    /// <summary>Length of a header with the most options IHL allows (15 words).</summary>
    public const int MaxHeaderLength = 60;

    /// <summary>The largest IPv4 packet (the total-length field is 16 bits).</summary>
    public const int MaxPacketLength = 65535;

    private const ushort FlagDontFragment = 0x4000;
    private const ushort FlagMoreFragments = 0x2000;
    private const ushort FragmentOffsetMask = 0x1FFF;

    private readonly Span<byte> _buffer;

    private Ipv4Packet(Span<byte> buffer) => _buffer = buffer;

    /// <summary>
    /// Creates a view when <paramref name="buffer"/> holds a well-formed IPv4 header: version 4,
    /// IHL at least 5, and header length &lt;= total length &lt;= buffer length. The header checksum
    /// is not checked here (see <see cref="VerifyHeaderChecksum"/>). Never throws.
    /// </summary>
    public static bool TryCreate(Span<byte> buffer, out Ipv4Packet packet)
    {
        packet = default;
        if (buffer.Length < MinHeaderLength)
        {
            return false;
        }

        byte versionIhl = buffer[0];
        int headerLength = (versionIhl & 0x0F) * 4;
        if (versionIhl >> 4 != 4 || headerLength < MinHeaderLength)
        {
            return false;
        }

        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(buffer.Slice(2, 2));
        if (totalLength < headerLength || totalLength > buffer.Length)
        {
            return false;
        }

        packet = new Ipv4Packet(buffer[..totalLength]);
        return true;
    }

    /// <summary>The whole packet, header and payload (exactly <see cref="TotalLength"/> bytes).</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>The IP version (always 4 for a created view).</summary>
    public int Version => _buffer[0] >> 4;

    /// <summary>The header length in bytes (IHL * 4), options included.</summary>
    public int HeaderLength => (_buffer[0] & 0x0F) * 4;

    /// <summary>The differentiated services code point (6 bits).</summary>
    public byte Dscp
    {
        get => (byte)(_buffer[1] >> 2);
        set => _buffer[1] = (byte)((value << 2) | (_buffer[1] & 0x03));
    }

    /// <summary>The explicit congestion notification bits (2 bits).</summary>
    public byte Ecn
    {
        get => (byte)(_buffer[1] & 0x03);
        set => _buffer[1] = (byte)((_buffer[1] & 0xFC) | (value & 0x03));
    }

    /// <summary>The total length field: header plus payload, in bytes (also the view's length).</summary>
    public ushort TotalLength => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(2, 2));

    /// <summary>The identification field, shared by the fragments of one datagram.</summary>
    public ushort Identification
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(4, 2));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(4, 2), value);
    }

    /// <summary>The don't-fragment flag.</summary>
    public bool DontFragment
    {
        get => (FlagsAndOffset & FlagDontFragment) != 0;
        set => FlagsAndOffset = (ushort)(value ? FlagsAndOffset | FlagDontFragment : FlagsAndOffset & ~FlagDontFragment);
    }

    /// <summary>The more-fragments flag.</summary>
    public bool MoreFragments
    {
        get => (FlagsAndOffset & FlagMoreFragments) != 0;
        set => FlagsAndOffset = (ushort)(value ? FlagsAndOffset | FlagMoreFragments : FlagsAndOffset & ~FlagMoreFragments);
    }

    /// <summary>The fragment offset in bytes (the field counts 8-byte units; the setter takes bytes, a multiple of 8).</summary>
    public int FragmentOffset
    {
        get => (FlagsAndOffset & FragmentOffsetMask) * 8;
        set => FlagsAndOffset = (ushort)((FlagsAndOffset & ~FragmentOffsetMask) | ((value / 8) & FragmentOffsetMask));
    }

    /// <summary>True for any fragment of a fragmented datagram (more fragments set, or a non-zero offset).</summary>
    public bool IsFragment => (FlagsAndOffset & (FlagMoreFragments | FragmentOffsetMask)) != 0;

    /// <summary>The time to live.</summary>
    public byte TimeToLive
    {
        get => _buffer[8];
        set => _buffer[8] = value;
    }

    /// <summary>The protocol of the payload (see <see cref="IpProtocol"/>).</summary>
    public byte Protocol
    {
        get => _buffer[9];
        set => _buffer[9] = value;
    }

    /// <summary>The header checksum field as carried.</summary>
    public ushort HeaderChecksum
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(10, 2));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(10, 2), value);
    }

    /// <summary>The source address bytes (network order).</summary>
    public Span<byte> SourceBytes => _buffer.Slice(12, 4);

    /// <summary>The destination address bytes (network order).</summary>
    public Span<byte> DestinationBytes => _buffer.Slice(16, 4);

    /// <summary>The source address as a host-order integer (192.168.0.1 is <c>0xC0A80001</c>).</summary>
    public uint Source
    {
        get => BinaryPrimitives.ReadUInt32BigEndian(_buffer.Slice(12, 4));
        set => BinaryPrimitives.WriteUInt32BigEndian(_buffer.Slice(12, 4), value);
    }

    /// <summary>The destination address as a host-order integer.</summary>
    public uint Destination
    {
        get => BinaryPrimitives.ReadUInt32BigEndian(_buffer.Slice(16, 4));
        set => BinaryPrimitives.WriteUInt32BigEndian(_buffer.Slice(16, 4), value);
    }

    /// <summary>The options (empty when IHL is 5).</summary>
    public Span<byte> Options => _buffer[MinHeaderLength..HeaderLength];

    /// <summary>The header, options included.</summary>
    public Span<byte> Header => _buffer[..HeaderLength];

    /// <summary>The payload: from the end of the options to the total length.</summary>
    public Span<byte> Payload => _buffer[HeaderLength..];

    private ushort FlagsAndOffset
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(6, 2));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(6, 2), value);
    }

    /// <summary>True when the header checksum is right.</summary>
    public bool VerifyHeaderChecksum() => InternetChecksum.IsValid(Header);

    /// <summary>Computes the header checksum and writes it.</summary>
    public void FillHeaderChecksum()
    {
        HeaderChecksum = 0;
        HeaderChecksum = InternetChecksum.Compute(Header);
    }
}

/// <summary>
/// The parsed fields of an IPv4 header, options excepted (<see cref="Emit"/> writes a 20-byte
/// header; <see cref="Parse"/> skips any options). Addresses are host-order integers.
/// </summary>
/// <param name="Source">Source address.</param>
/// <param name="Destination">Destination address.</param>
/// <param name="Protocol">Payload protocol (see <see cref="IpProtocol"/>).</param>
/// <param name="PayloadLength">Payload length in bytes (total length minus the header).</param>
/// <param name="TimeToLive">Time to live.</param>
/// <param name="Identification">Identification.</param>
/// <param name="DontFragment">Don't-fragment flag.</param>
/// <param name="MoreFragments">More-fragments flag.</param>
/// <param name="FragmentOffset">Fragment offset in bytes (a multiple of 8, at most 65528).</param>
/// <param name="Dscp">DSCP (6 bits).</param>
/// <param name="Ecn">ECN (2 bits).</param>
internal readonly record struct Ipv4Header(
    uint Source,
    uint Destination,
    byte Protocol,
    int PayloadLength,
    byte TimeToLive = Ipv4Header.DefaultTimeToLive,
    ushort Identification = 0,
    bool DontFragment = false,
    bool MoreFragments = false,
    int FragmentOffset = 0,
    byte Dscp = 0,
    byte Ecn = 0)
{
    /// <summary>The TTL the stack puts on packets it originates.</summary>
    public const byte DefaultTimeToLive = 64;

    /// <summary>Reads the fields of a validated packet.</summary>
    public static Ipv4Header Parse(Ipv4Packet packet) => new(
        packet.Source,
        packet.Destination,
        packet.Protocol,
        packet.TotalLength - packet.HeaderLength,
        packet.TimeToLive,
        packet.Identification,
        packet.DontFragment,
        packet.MoreFragments,
        packet.FragmentOffset,
        packet.Dscp,
        packet.Ecn);

    /// <summary>
    /// Writes a 20-byte header (no options) with its checksum into the first
    /// <see cref="Ipv4Packet.MinHeaderLength"/> bytes of <paramref name="destination"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The destination is too short or a field is out of range.</exception>
    public void Emit(Span<byte> destination)
    {
        if (destination.Length < Ipv4Packet.MinHeaderLength)
        {
            throw new ArgumentException("An IPv4 header needs 20 bytes.", nameof(destination));
        }

        if ((uint)PayloadLength > Ipv4Packet.MaxPacketLength - Ipv4Packet.MinHeaderLength
            || (uint)FragmentOffset > 65528 || (FragmentOffset & 7) != 0 || Dscp > 63 || Ecn > 3)
        {
            throw new ArgumentException("An IPv4 header field is out of range.", nameof(destination));
        }

        var header = destination[..Ipv4Packet.MinHeaderLength];
        header[0] = 0x45;
        header[1] = (byte)((Dscp << 2) | Ecn);
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(2, 2), (ushort)(Ipv4Packet.MinHeaderLength + PayloadLength));
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(4, 2), Identification);
        int flags = (DontFragment ? 0x4000 : 0) | (MoreFragments ? 0x2000 : 0) | (FragmentOffset / 8);
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(6, 2), (ushort)flags);
        header[8] = TimeToLive;
        header[9] = Protocol;
        header[10] = 0;
        header[11] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(header.Slice(12, 4), Source);
        BinaryPrimitives.WriteUInt32BigEndian(header.Slice(16, 4), Destination);
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(10, 2), InternetChecksum.Compute(header));
    }
}
