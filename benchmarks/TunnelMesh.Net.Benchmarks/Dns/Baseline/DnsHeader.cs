// Benchmark-only: the hand-written DNS codec removed from src/ in issue 10 (DNS on Makaretu.Dns),
// kept unchanged but for its namespace as the reference of DnsAnswerBenchmarks.
using System.Buffers.Binary;

namespace TunnelMesh.Net.Benchmarks.Dns.Baseline;

/// <summary>
/// The fixed 12-byte header of a DNS message (RFC 1035 §4.1.1): id, the flag word, and the four
/// section counts. <see cref="Flags"/> is kept whole so that reserved bits survive a round trip;
/// the properties read and <c>With…</c> methods set its fields.
/// </summary>
internal readonly record struct DnsHeader(ushort Id, ushort Flags, ushort QuestionCount, ushort AnswerCount, ushort AuthorityCount, ushort AdditionalCount)
{
    private const ushort QrBit = 0x8000;
    private const ushort AaBit = 0x0400;
    private const ushort TcBit = 0x0200;
    private const ushort RdBit = 0x0100;
    private const ushort RaBit = 0x0080;

    /// <summary>Whether the message is a response (QR).</summary>
    public bool IsResponse => (Flags & QrBit) != 0;

    /// <summary>The opcode (0 = standard query).</summary>
    public int Opcode => (Flags >> 11) & 0xF;

    /// <summary>Authoritative answer (AA).</summary>
    public bool Authoritative => (Flags & AaBit) != 0;

    /// <summary>Truncated (TC).</summary>
    public bool Truncated => (Flags & TcBit) != 0;

    /// <summary>Recursion desired (RD).</summary>
    public bool RecursionDesired => (Flags & RdBit) != 0;

    /// <summary>Recursion available (RA).</summary>
    public bool RecursionAvailable => (Flags & RaBit) != 0;

    /// <summary>The low four bits of the response code.</summary>
    public int Rcode => Flags & 0xF;

    /// <summary>Flags of a response to a query with <paramref name="queryFlags"/>: QR set, opcode and RD copied, the rest as given.</summary>
    public static ushort ResponseFlags(ushort queryFlags, int rcode, bool authoritative, bool recursionAvailable, bool truncated = false)
    {
        int flags = QrBit | (queryFlags & 0x7800) | (queryFlags & RdBit) | (rcode & 0xF);
        if (authoritative)
        {
            flags |= AaBit;
        }

        if (recursionAvailable)
        {
            flags |= RaBit;
        }

        if (truncated)
        {
            flags |= TcBit;
        }

        return (ushort)flags;
    }

    /// <summary>The same flags with TC set.</summary>
    public static ushort WithTruncated(ushort flags) => (ushort)(flags | TcBit);

    /// <summary>Reads the header; false when fewer than 12 bytes are given. Never throws.</summary>
    public static bool TryRead(ReadOnlySpan<byte> message, out DnsHeader header)
    {
        if (message.Length < DnsLimits.HeaderLength)
        {
            header = default;
            return false;
        }

        header = new DnsHeader(
            BinaryPrimitives.ReadUInt16BigEndian(message),
            BinaryPrimitives.ReadUInt16BigEndian(message[2..]),
            BinaryPrimitives.ReadUInt16BigEndian(message[4..]),
            BinaryPrimitives.ReadUInt16BigEndian(message[6..]),
            BinaryPrimitives.ReadUInt16BigEndian(message[8..]),
            BinaryPrimitives.ReadUInt16BigEndian(message[10..]));
        return true;
    }

    /// <summary>Writes the 12 bytes at the start of <paramref name="destination"/>.</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, Id);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], QuestionCount);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], AnswerCount);
        BinaryPrimitives.WriteUInt16BigEndian(destination[8..], AuthorityCount);
        BinaryPrimitives.WriteUInt16BigEndian(destination[10..], AdditionalCount);
    }
}
