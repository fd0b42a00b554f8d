using System.Buffers.Binary;

namespace TunnelMesh.Net.Wire.Dns;

/// <summary>
/// The fields of the fixed 12-byte DNS header (RFC 1035 §4.1.1) that a server needs before, or
/// without, reading the rest of a message: the id and flags to answer FORMERR with, QR to drop
/// responses, the opcode (read here because Makaretu.Dns folds the OPT record's extended-RCODE
/// bits into its <c>Message.Opcode</c>). Everything else is read through Makaretu.Dns.
/// </summary>
internal readonly record struct DnsHeader(ushort Id, ushort Flags)
{
    /// <summary>Length of the fixed header.</summary>
    public const int Length = 12;

    /// <summary>Whether the message is a response (QR).</summary>
    public bool IsResponse => (Flags & 0x8000) != 0;

    /// <summary>The four-bit opcode of the header (0 = standard query).</summary>
    public int Opcode => (Flags >> 11) & 0xF;

    /// <summary>Recursion desired (RD).</summary>
    public bool RecursionDesired => (Flags & 0x0100) != 0;

    /// <summary>Reads id and flags; false when fewer than 12 bytes are given. Never throws.</summary>
    public static bool TryRead(ReadOnlySpan<byte> message, out DnsHeader header)
    {
        if (message.Length < Length)
        {
            header = default;
            return false;
        }

        header = new DnsHeader(BinaryPrimitives.ReadUInt16BigEndian(message), BinaryPrimitives.ReadUInt16BigEndian(message[2..]));
        return true;
    }
}
