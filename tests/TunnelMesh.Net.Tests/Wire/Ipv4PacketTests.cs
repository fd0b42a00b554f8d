using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Wire;

public class Ipv4PacketTests
{
    // The example header from Wikipedia's "Internet checksum" / IPv4 header checksum article:
    // a UDP packet from 192.168.0.1 to 192.168.0.199, total length 115, DF, TTL 64, checksum 0xB861.
    private const string WikipediaHeader = "45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7";

    private static byte[] WikipediaPacket(int extra = 0)
    {
        var packet = new byte[0x73 + extra];
        WireGen.FromHex(WikipediaHeader).CopyTo(packet, 0);
        for (int i = 20; i < packet.Length; i++)
        {
            packet[i] = (byte)i;
        }

        return packet;
    }

    [Fact]
    public void Parses_the_wikipedia_header()
    {
        var bytes = WikipediaPacket();
        Assert.True(Ipv4Packet.TryCreate(bytes, out var ip));
        Assert.Equal(4, ip.Version);
        Assert.Equal(20, ip.HeaderLength);
        Assert.Equal(0, ip.Dscp);
        Assert.Equal(0, ip.Ecn);
        Assert.Equal(115, ip.TotalLength);
        Assert.Equal(0, ip.Identification);
        Assert.True(ip.DontFragment);
        Assert.False(ip.MoreFragments);
        Assert.False(ip.IsFragment);
        Assert.Equal(0, ip.FragmentOffset);
        Assert.Equal(64, ip.TimeToLive);
        Assert.Equal(IpProtocol.Udp, ip.Protocol);
        Assert.Equal(0xB861, ip.HeaderChecksum);
        Assert.Equal(0xC0A80001u, ip.Source);
        Assert.Equal(0xC0A800C7u, ip.Destination);
        Assert.Equal(new byte[] { 192, 168, 0, 1 }, ip.SourceBytes.ToArray());
        Assert.Equal(new byte[] { 192, 168, 0, 199 }, ip.DestinationBytes.ToArray());
        Assert.True(ip.VerifyHeaderChecksum());
        Assert.Equal(95, ip.Payload.Length);
        Assert.Equal(20, ip.Payload[0]);
        Assert.True(ip.Options.IsEmpty);
    }

    [Fact]
    public void Fill_reproduces_the_wikipedia_checksum_and_emit_matches()
    {
        var bytes = WikipediaPacket();
        Assert.True(Ipv4Packet.TryCreate(bytes, out var ip));
        ip.HeaderChecksum = 0;
        Assert.False(ip.VerifyHeaderChecksum());
        ip.FillHeaderChecksum();
        Assert.Equal(0xB861, ip.HeaderChecksum);

        var header = Ipv4Header.Parse(ip);
        Assert.Equal(new Ipv4Header(0xC0A80001, 0xC0A800C7, IpProtocol.Udp, 95, 64, 0, DontFragment: true), header);
        var emitted = new byte[20];
        header.Emit(emitted);
        Assert.Equal(WikipediaHeader.Replace(" ", "", StringComparison.Ordinal), WireGen.Hex(emitted), ignoreCase: true);
    }

    [Fact]
    public void Trailing_padding_is_outside_the_view()
    {
        var bytes = WikipediaPacket(extra: 13);
        Assert.True(Ipv4Packet.TryCreate(bytes, out var ip));
        Assert.Equal(115, ip.Buffer.Length);
        Assert.Equal(95, ip.Payload.Length);
    }

    [Fact]
    public void Options_are_skipped()
    {
        // IHL 6: one word of options (NOP NOP NOP EOL), then the payload.
        var bytes = new byte[24 + 5];
        new Ipv4Header(1, 2, IpProtocol.Udp, 9).Emit(bytes);
        bytes[0] = 0x46;
        bytes[3] = 29;
        bytes[20] = 1;
        bytes[21] = 1;
        bytes[22] = 1;
        bytes[23] = 0;
        bytes[24] = 0xAA;
        Assert.True(Ipv4Packet.TryCreate(bytes, out var ip));
        ip.FillHeaderChecksum();
        Assert.True(ip.VerifyHeaderChecksum());
        Assert.Equal(24, ip.HeaderLength);
        Assert.Equal(4, ip.Options.Length);
        Assert.Equal(5, ip.Payload.Length);
        Assert.Equal(0xAA, ip.Payload[0]);
    }

    [Theory]
    [InlineData("too short", 19)]
    [InlineData("version 6", 0)]
    [InlineData("IHL 4", 1)]
    [InlineData("total below header", 2)]
    [InlineData("total beyond buffer", 3)]
    [InlineData("IHL beyond total", 4)]
    public void Rejects_malformed_headers(string why, int variant)
    {
        var bytes = WikipediaPacket();
        switch (variant)
        {
            case 19: bytes = bytes[..19]; break;
            case 0: bytes[0] = 0x65; break;
            case 1: bytes[0] = 0x44; break;
            case 2: bytes[2] = 0; bytes[3] = 19; break;
            case 3: bytes[2] = 0; bytes[3] = 116; break;
            case 4: bytes[0] = 0x4F; bytes[2] = 0; bytes[3] = 40; break;
        }

        Assert.False(Ipv4Packet.TryCreate(bytes, out _), why);
    }

    [Fact]
    public void Fragment_fields_round_trip_through_setters()
    {
        var bytes = WikipediaPacket();
        Assert.True(Ipv4Packet.TryCreate(bytes, out var ip));
        ip.DontFragment = false;
        ip.MoreFragments = true;
        ip.FragmentOffset = 8 * 1234;
        Assert.False(ip.DontFragment);
        Assert.True(ip.MoreFragments);
        Assert.True(ip.IsFragment);
        Assert.Equal(8 * 1234, ip.FragmentOffset);
        ip.MoreFragments = false;
        Assert.True(ip.IsFragment);
        ip.FragmentOffset = 0;
        Assert.False(ip.IsFragment);
        ip.Dscp = 46;
        ip.Ecn = 3;
        Assert.Equal(46, ip.Dscp);
        Assert.Equal(3, ip.Ecn);
        ip.Source = 0x64400001;
        Assert.Equal(new byte[] { 100, 64, 0, 1 }, ip.SourceBytes.ToArray());
    }

    internal static Gen<Ipv4Header> HeaderGen { get; } =
        from addresses in Gen.Two(WireGen.UInt)
        from protocol in WireGen.Byte
        from ttl in WireGen.Byte
        from id in WireGen.UShort
        from flags in Gen.Choose(0, 3)
        from offset in Gen.Choose(0, 8191)
        from tos in Gen.Choose(0, 255)
        from length in Gen.Choose(0, 1500)
        select new Ipv4Header(addresses.Item1, addresses.Item2, protocol, length, ttl, id, (flags & 1) != 0, (flags & 2) != 0, offset * 8, (byte)(tos >> 2), (byte)(tos & 3));

    [Property]
    public Property Parse_of_emit_is_identity()
    {
        return Prop.ForAll(HeaderGen.ToArbitrary(), header =>
        {
            var bytes = new byte[20 + header.PayloadLength];
            header.Emit(bytes);
            return Ipv4Packet.TryCreate(bytes, out var ip) && ip.VerifyHeaderChecksum() && Ipv4Header.Parse(ip) == header
                && ip.Payload.Length == header.PayloadLength;
        });
    }

    [Property]
    public Property Random_bytes_never_throw_and_accepted_views_are_consistent()
    {
        // Bias the first byte toward 0x45..0x4F so the deeper checks are reached too.
        var gen = from data in WireGen.Bytes(120)
                  from first in Gen.Choose(0x40, 0x4F)
                  from useFirst in Gen.Elements(true, false)
                  select useFirst && data.Length > 0 ? [(byte)first, .. data[1..]] : data;
        return Prop.ForAll(gen.ToArbitrary(), data =>
        {
            if (!Ipv4Packet.TryCreate(data, out var ip))
            {
                return true;
            }

            _ = ip.VerifyHeaderChecksum();
            return ip.HeaderLength >= 20 && ip.HeaderLength <= ip.TotalLength && ip.TotalLength <= data.Length
                && ip.Payload.Length == ip.TotalLength - ip.HeaderLength && ip.Options.Length == ip.HeaderLength - 20;
        });
    }
}
