using FsCheck;
using FsCheck.Fluent;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Wire;

/// <summary>Generators and plain reference implementations shared by the Wire and Stack tests.</summary>
internal static class WireGen
{
    public static Gen<byte> Byte { get; } = Gen.Choose(0, 255).Select(i => (byte)i);

    public static Gen<ushort> UShort { get; } = Gen.Choose(0, 65535).Select(i => (ushort)i);

    public static Gen<uint> UInt { get; } = Gen.Two(UShort).Select(t => ((uint)t.Item1 << 16) | t.Item2);

    public static Gen<byte[]> Bytes(int maxLength) => Gen.Choose(0, maxLength).SelectMany(n => Gen.ArrayOf(Byte, n));

    /// <summary>The checksum written the plain way: 16-bit big-endian words, end-around carry, complement.</summary>
    public static ushort ReferenceChecksum(byte[] data)
    {
        uint sum = 0;
        for (int i = 0; i < data.Length; i += 2)
        {
            int word = data[i] << 8;
            if (i + 1 < data.Length)
            {
                word |= data[i + 1];
            }

            sum += (uint)word;
            while (sum > 0xFFFF)
            {
                sum = (sum & 0xFFFF) + (sum >> 16);
            }
        }

        return (ushort)~sum;
    }

    /// <summary>A whole IPv4 packet (20-byte header) around <paramref name="payload"/>.</summary>
    public static byte[] Ipv4Packet(Ipv4Header header, ReadOnlySpan<byte> payload)
    {
        var packet = new byte[20 + payload.Length];
        (header with { PayloadLength = payload.Length }).Emit(packet);
        payload.CopyTo(packet.AsSpan(20));
        return packet;
    }

    /// <summary>An IPv4 + UDP packet with correct checksums.</summary>
    public static byte[] UdpPacket(uint source, uint destination, ushort sourcePort, ushort destinationPort, ReadOnlySpan<byte> payload, ushort id = 1)
    {
        var udp = new byte[8 + payload.Length];
        payload.CopyTo(udp.AsSpan(8));
        new UdpHeader(sourcePort, destinationPort, payload.Length).EmitIpv4(udp, source, destination);
        return Ipv4Packet(new Ipv4Header(source, destination, IpProtocol.Udp, 0, Identification: id), udp);
    }

    /// <summary>Splits a whole packet (20-byte header) into fragments at the given payload offsets (multiples of 8).</summary>
    public static List<byte[]> Fragment(byte[] packet, IEnumerable<int> cuts)
    {
        Ipv4Packet_TryCreate(packet, out var header);
        int payloadLength = packet.Length - 20;
        var points = cuts.Where(c => c > 0 && c < payloadLength).Distinct().OrderBy(c => c).Append(payloadLength).ToList();
        var fragments = new List<byte[]>();
        int start = 0;
        foreach (int end in points)
        {
            var h = header with { FragmentOffset = start, MoreFragments = end < payloadLength };
            fragments.Add(Ipv4Packet(h, packet.AsSpan(20 + start, end - start)));
            start = end;
        }

        return fragments;
    }

    private static void Ipv4Packet_TryCreate(byte[] packet, out Ipv4Header header)
    {
        if (!TunnelMesh.Net.Wire.Ipv4Packet.TryCreate(packet, out var view))
        {
            throw new ArgumentException("not an IPv4 packet", nameof(packet));
        }

        header = Ipv4Header.Parse(view);
    }

    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes);

    public static byte[] FromHex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));
}
