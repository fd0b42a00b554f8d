using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace TunnelMesh.Net.Wire;

/// <summary>
/// The Internet checksum (RFC 1071): the 16-bit one's complement of the one's complement sum of
/// the data taken as big-endian 16-bit words. Used by the IPv4 header, ICMP, UDP and TCP.
/// </summary>
/// <remarks>
/// Work is split into an accumulation step (<see cref="Accumulate"/>, which returns a partial sum
/// that can be fed back in) and <see cref="Finish"/>, so a checksum can cover a pseudo-header and
/// a packet that live in different places without copying. Every span accumulated before the last
/// one must have an even length (a 16-bit word never straddles two spans); the last one may be odd,
/// in which case it is padded with a zero byte as the RFC says.
/// </remarks>
internal static class InternetChecksum
{
    /// <summary>
    /// Adds <paramref name="data"/> to the partial sum <paramref name="sum"/> and returns the new
    /// partial sum, folded to 16 bits (so it is at most <c>0xFFFF</c>). Not complemented.
    /// </summary>
    public static uint Accumulate(ReadOnlySpan<byte> data, uint sum = 0)
    {
        // Eight bytes at a time into a 64-bit accumulator: the two 32-bit halves of each big-endian
        // word are added separately, so 2^32 iterations would be needed to overflow (a 64 KiB
        // datagram needs 8192). Carries are folded back in once at the end.
        ulong acc = sum;
        int i = 0;
        int end8 = data.Length & ~7;
        while (i < end8)
        {
            ulong word = BinaryPrimitives.ReadUInt64BigEndian(data.Slice(i, 8));
            acc += (word >> 32) + (word & 0xFFFF_FFFFUL);
            i += 8;
        }

        if (data.Length - i >= 4)
        {
            acc += BinaryPrimitives.ReadUInt32BigEndian(data.Slice(i, 4));
            i += 4;
        }

        if (data.Length - i >= 2)
        {
            acc += BinaryPrimitives.ReadUInt16BigEndian(data.Slice(i, 2));
            i += 2;
        }

        if (i < data.Length)
        {
            // Odd length: the last byte is the high half of a word whose low half is zero.
            acc += (ulong)data[i] << 8;
        }

        return Fold(acc);
    }

    /// <summary>Folds a wide partial sum to 16 bits with end-around carry (not complemented).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Fold(ulong sum)
    {
        sum = (sum & 0xFFFF_FFFFUL) + (sum >> 32);
        sum = (sum & 0xFFFF_FFFFUL) + (sum >> 32);
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (uint)sum;
    }

    /// <summary>Folds a partial sum and complements it: the value to write into a checksum field.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Finish(uint sum) => (ushort)~Fold(sum);

    /// <summary>The checksum of <paramref name="data"/> (any length), ready to be written.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => Finish(Accumulate(data));

    /// <summary>
    /// True when <paramref name="data"/>, checksum field included, sums to <c>0xFFFF</c> (i.e. the
    /// checksum it carries is right). <paramref name="sum"/> is a partial sum, e.g. a pseudo-header.
    /// </summary>
    public static bool IsValid(ReadOnlySpan<byte> data, uint sum = 0) => Accumulate(data, sum) == 0xFFFF;

    /// <summary>
    /// The partial sum of the IPv4 pseudo-header used by UDP and TCP (RFC 768, RFC 793): source,
    /// destination, zero, protocol, and the upper-layer length.
    /// </summary>
    public static uint PseudoHeaderIpv4(uint source, uint destination, byte protocol, ushort length)
    {
        ulong acc = (source >> 16) + (source & 0xFFFF)
            + (destination >> 16) + (destination & 0xFFFF)
            + protocol + (ulong)length;
        return Fold(acc);
    }

    /// <summary>
    /// The partial sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source and destination
    /// (16 bytes each), the 32-bit upper-layer length, three zero bytes and the next header.
    /// </summary>
    public static uint PseudoHeaderIpv6(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, byte nextHeader, uint length)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(source.Length, 16, nameof(source));
        ArgumentOutOfRangeException.ThrowIfNotEqual(destination.Length, 16, nameof(destination));
        uint sum = Accumulate(source);
        sum = Accumulate(destination, sum);
        ulong acc = sum + (ulong)(length >> 16) + (length & 0xFFFF) + nextHeader;
        return Fold(acc);
    }
}
