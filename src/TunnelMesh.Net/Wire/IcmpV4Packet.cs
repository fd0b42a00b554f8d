using System.Buffers.Binary;

namespace TunnelMesh.Net.Wire;

/// <summary>ICMPv4 message types the stack uses (RFC 792).</summary>
internal enum IcmpV4Type : byte
{
    /// <summary>Echo reply.</summary>
    EchoReply = 0,

    /// <summary>Destination unreachable (codes in <see cref="IcmpV4UnreachableCode"/>).</summary>
    DestinationUnreachable = 3,

    /// <summary>Echo request.</summary>
    EchoRequest = 8,

    /// <summary>Time exceeded.</summary>
    TimeExceeded = 11,
}

/// <summary>Codes of <see cref="IcmpV4Type.DestinationUnreachable"/> (RFC 792, RFC 1191).</summary>
internal enum IcmpV4UnreachableCode : byte
{
    /// <summary>Network unreachable.</summary>
    NetworkUnreachable = 0,

    /// <summary>Host unreachable.</summary>
    HostUnreachable = 1,

    /// <summary>Protocol unreachable.</summary>
    ProtocolUnreachable = 2,

    /// <summary>Port unreachable.</summary>
    PortUnreachable = 3,

    /// <summary>Fragmentation needed and DF set (the next-hop MTU is in bytes 6..8).</summary>
    FragmentationNeeded = 4,
}

/// <summary>
/// A zero-copy view of an ICMPv4 message (RFC 792): type, code, checksum, four bytes of
/// "rest of header" (identifier and sequence for echo; unused or next-hop MTU for unreachable),
/// then the payload (echo data, or the quoted original IP header and at least 8 bytes of its payload
/// for errors). The checksum covers the whole message.
/// </summary>
internal readonly ref struct IcmpV4Packet
{
    /// <summary>Length of the fixed header.</summary>
    public const int HeaderLength = 8;

    private readonly Span<byte> _buffer;

    private IcmpV4Packet(Span<byte> buffer) => _buffer = buffer;

    /// <summary>Creates a view when <paramref name="buffer"/> (the whole ICMP message) holds at least the 8-byte header. Never throws.</summary>
    public static bool TryCreate(Span<byte> buffer, out IcmpV4Packet packet)
    {
        if (buffer.Length < HeaderLength)
        {
            packet = default;
            return false;
        }

        packet = new IcmpV4Packet(buffer);
        return true;
    }

    /// <summary>The whole message.</summary>
    public Span<byte> Buffer => _buffer;

    /// <summary>The message type.</summary>
    public IcmpV4Type Type
    {
        get => (IcmpV4Type)_buffer[0];
        set => _buffer[0] = (byte)value;
    }

    /// <summary>The message code.</summary>
    public byte Code
    {
        get => _buffer[1];
        set => _buffer[1] = value;
    }

    /// <summary>The checksum field as carried.</summary>
    public ushort Checksum
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(2, 2));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(2, 2), value);
    }

    /// <summary>The echo identifier (bytes 4..6).</summary>
    public ushort Identifier
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(4, 2));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(4, 2), value);
    }

    /// <summary>The echo sequence number (bytes 6..8).</summary>
    public ushort SequenceNumber
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(6, 2));
        set => BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(6, 2), value);
    }

    /// <summary>Bytes 4..8 as one integer (zero for most errors; next-hop MTU in the low half for "fragmentation needed").</summary>
    public uint RestOfHeader
    {
        get => BinaryPrimitives.ReadUInt32BigEndian(_buffer.Slice(4, 4));
        set => BinaryPrimitives.WriteUInt32BigEndian(_buffer.Slice(4, 4), value);
    }

    /// <summary>Everything after the 8-byte header: echo data, or the quoted datagram of an error.</summary>
    public Span<byte> Payload => _buffer[HeaderLength..];

    /// <summary>True for destination unreachable and time exceeded (messages that quote a datagram).</summary>
    public bool IsError => Type is IcmpV4Type.DestinationUnreachable or IcmpV4Type.TimeExceeded;

    /// <summary>True when the checksum over the whole message is right.</summary>
    public bool VerifyChecksum() => InternetChecksum.IsValid(_buffer);

    /// <summary>Computes the checksum over the whole message and writes it.</summary>
    public void FillChecksum()
    {
        Checksum = 0;
        Checksum = InternetChecksum.Compute(_buffer);
    }
}

/// <summary>
/// The header of an ICMPv4 echo request or reply. <see cref="Emit"/> writes the header in front of
/// a payload already in place and fills the checksum over both.
/// </summary>
/// <param name="IsRequest">True for an echo request, false for a reply.</param>
/// <param name="Identifier">Identifier.</param>
/// <param name="SequenceNumber">Sequence number.</param>
internal readonly record struct IcmpV4Echo(bool IsRequest, ushort Identifier, ushort SequenceNumber)
{
    /// <summary>Reads an echo header; false when the message is not an echo request or reply (code 0).</summary>
    public static bool TryParse(IcmpV4Packet packet, out IcmpV4Echo echo)
    {
        if (packet.Code != 0 || packet.Type is not (IcmpV4Type.EchoRequest or IcmpV4Type.EchoReply))
        {
            echo = default;
            return false;
        }

        echo = new IcmpV4Echo(packet.Type == IcmpV4Type.EchoRequest, packet.Identifier, packet.SequenceNumber);
        return true;
    }

    /// <summary>
    /// Writes the header into the first 8 bytes of <paramref name="message"/> (the whole ICMP
    /// message, whose payload is already in place) and fills the checksum.
    /// </summary>
    public void Emit(Span<byte> message)
    {
        if (!IcmpV4Packet.TryCreate(message, out var packet))
        {
            throw new ArgumentException("An ICMP message needs at least 8 bytes.", nameof(message));
        }

        packet.Type = IsRequest ? IcmpV4Type.EchoRequest : IcmpV4Type.EchoReply;
        packet.Code = 0;
        packet.Identifier = Identifier;
        packet.SequenceNumber = SequenceNumber;
        packet.FillChecksum();
    }
}
