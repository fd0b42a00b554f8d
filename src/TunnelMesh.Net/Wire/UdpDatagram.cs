using System.Buffers.Binary;

namespace TunnelMesh.Net.Wire;

/// <summary>
/// A zero-copy view of a UDP datagram (RFC 768): source port, destination port, length, checksum,
/// payload. The view covers exactly <see cref="Length"/> bytes. The checksum covers a pseudo-header
/// of the IP layer, so verifying and filling take the addresses.
/// </summary>
internal readonly ref struct UdpDatagram
{
    /// <summary>Length of the header.</summary>
    public const int HeaderLength = 8;

    /// <summary>The largest payload that fits an IPv4 datagram without options (65535 - 20 - 8).</summary>
    public const int MaxIpv4PayloadLength = Ipv4Packet.MaxPacketLength - Ipv4Packet.MinHeaderLength - HeaderLength;

    private readonly Span<byte> _buffer;

    private UdpDatagram(Span<byte> buffer) => _buffer = buffer;

    /// <summary>Creates a view when the length field satisfies 8 &lt;= length &lt;= buffer length. Never throws.</summary>
    public static bool TryCreate(Span<byte> buffer, out UdpDatagram datagram)
    {
        datagram = default;
        if (buffer.Length < HeaderLength)
        {
            return false;
        }

        int length = BinaryPrimitives.ReadUInt16BigEndian(buffer.Slice(4, 2));
        if (length < HeaderLength || length > buffer.Length)
        {
            return false;
        }

        datagram = new UdpDatagram(buffer[..length]);
        return true;
    }

    /// <summary>The whole datagram, header and payload.</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>The source port.</summary>
    public ushort SourcePort
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer[..2]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer[..2], value);
    }

    /// <summary>The destination port.</summary>
    public ushort DestinationPort
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(2, 2));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(2, 2), value);
    }

    /// <summary>The length field: header plus payload (also the view's length).</summary>
    public ushort Length => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(4, 2));

    /// <summary>The checksum field as carried (0 means "none" over IPv4).</summary>
    public ushort Checksum
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(6, 2));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(6, 2), value);
    }

    /// <summary>The payload.</summary>
    public Span<byte> Payload => _buffer[HeaderLength..];

    /// <summary>
    /// True when the checksum is right for the IPv4 pseudo-header of <paramref name="source"/> and
    /// <paramref name="destination"/>, or when the sender sent none (checksum 0 is allowed over IPv4).
    /// </summary>
    public bool VerifyChecksumIpv4(uint source, uint destination)
    {
        if (Checksum == 0)
        {
            return true;
        }

        uint pseudo = InternetChecksum.PseudoHeaderIpv4(source, destination, IpProtocol.Udp, Length);
        return InternetChecksum.IsValid(_buffer, pseudo);
    }

    /// <summary>Computes the checksum with the IPv4 pseudo-header and writes it (0xFFFF when it computes to 0).</summary>
    public void FillChecksumIpv4(uint source, uint destination)
    {
        Checksum = 0;
        uint pseudo = InternetChecksum.PseudoHeaderIpv4(source, destination, IpProtocol.Udp, Length);
        ushort checksum = InternetChecksum.Finish(InternetChecksum.Accumulate(_buffer, pseudo));
        Checksum = checksum == 0 ? (ushort)0xFFFF : checksum;
    }
}

/// <summary>
/// The header of a UDP datagram. <see cref="EmitIpv4"/> writes it in front of a payload already in
/// place and fills the checksum.
/// </summary>
/// <param name="SourcePort">Source port.</param>
/// <param name="DestinationPort">Destination port.</param>
/// <param name="PayloadLength">Payload length in bytes.</param>
internal readonly record struct UdpHeader(ushort SourcePort, ushort DestinationPort, int PayloadLength)
{
    /// <summary>Reads the header of a validated datagram.</summary>
    public static UdpHeader Parse(UdpDatagram datagram) =>
        new(datagram.SourcePort, datagram.DestinationPort, datagram.Length - UdpDatagram.HeaderLength);

    /// <summary>
    /// Writes the header into the first 8 bytes of <paramref name="datagram"/> (header plus payload,
    /// the payload already in place) and fills the checksum for the IPv4 pseudo-header.
    /// </summary>
    public void EmitIpv4(Span<byte> datagram, uint source, uint destination)
    {
        int length = UdpDatagram.HeaderLength + PayloadLength;
        if ((uint)PayloadLength > ushort.MaxValue - UdpDatagram.HeaderLength || datagram.Length < length)
        {
            throw new ArgumentException("The UDP payload length is out of range or the span is too short.", nameof(datagram));
        }

        var span = datagram[..length];
        BinaryPrimitives.WriteUInt16BigEndian(span[..2], SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(span.Slice(2, 2), DestinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(span.Slice(4, 2), (ushort)length);
        UdpDatagram.TryCreate(span, out var view);
        view.FillChecksumIpv4(source, destination);
    }
}
