using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Wire;

public class UdpDatagramTests
{
    [Property]
    public Property Parse_of_emit_is_identity_and_checksum_matches_reference()
    {
        var gen = from ports in Gen.Two(WireGen.UShort)
                  from addresses in Gen.Two(WireGen.UInt)
                  from payload in WireGen.Bytes(1500)
                  select (new UdpHeader(ports.Item1, ports.Item2, payload.Length), addresses, payload);
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (header, (src, dst), payload) = t;
            var datagram = new byte[8 + payload.Length];
            payload.CopyTo(datagram, 8);
            header.EmitIpv4(datagram, src, dst);

            // Reference: checksum over pseudo-header + datagram with the field zeroed (0 sent as 0xFFFF).
            var pseudo = new byte[12 + datagram.Length];
            BinaryPrimitives.WriteUInt32BigEndian(pseudo, src);
            BinaryPrimitives.WriteUInt32BigEndian(pseudo.AsSpan(4), dst);
            pseudo[9] = IpProtocol.Udp;
            BinaryPrimitives.WriteUInt16BigEndian(pseudo.AsSpan(10), (ushort)datagram.Length);
            datagram.CopyTo(pseudo, 12);
            pseudo[18] = pseudo[19] = 0;
            ushort expected = WireGen.ReferenceChecksum(pseudo);
            expected = expected == 0 ? (ushort)0xFFFF : expected;

            return UdpDatagram.TryCreate(datagram, out var udp)
                && UdpHeader.Parse(udp) == header
                && udp.Checksum == expected
                && udp.VerifyChecksumIpv4(src, dst)
                && udp.Payload.SequenceEqual(payload);
        });
    }

    [Fact]
    public void Checksum_zero_means_none_and_a_computed_zero_is_sent_as_ffff()
    {
        const uint src = 0x0A000001, dst = 0x0A000002;
        var datagram = new byte[10];
        BinaryPrimitives.WriteUInt16BigEndian(datagram, 1000);
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(2), 2000);
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(4), 10);

        // Choose the payload word so the whole sum is 0xFFFF, i.e. the checksum computes to 0.
        uint partial = InternetChecksum.Accumulate(datagram, InternetChecksum.PseudoHeaderIpv4(src, dst, IpProtocol.Udp, 10));
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(8), (ushort)(0xFFFF - partial));
        Assert.True(UdpDatagram.TryCreate(datagram, out var udp));
        Assert.True(udp.VerifyChecksumIpv4(src, dst)); // checksum field still 0: "none"
        udp.FillChecksumIpv4(src, dst);
        Assert.Equal(0xFFFF, udp.Checksum);
        Assert.True(udp.VerifyChecksumIpv4(src, dst));
        datagram[9] ^= 0x10;
        Assert.False(udp.VerifyChecksumIpv4(src, dst));
    }

    [Fact]
    public void Length_field_bounds_the_view()
    {
        var datagram = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(4), 12);
        Assert.True(UdpDatagram.TryCreate(datagram, out var udp));
        Assert.Equal(4, udp.Payload.Length);

        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(4), 7);
        Assert.False(UdpDatagram.TryCreate(datagram, out _));
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(4), 21);
        Assert.False(UdpDatagram.TryCreate(datagram, out _));
        Assert.False(UdpDatagram.TryCreate(datagram.AsSpan(0, 7), out _));
    }

    [Property]
    public Property Random_bytes_never_throw()
    {
        return Prop.ForAll(WireGen.Bytes(40).ToArbitrary(), data =>
        {
            if (!UdpDatagram.TryCreate(data, out var udp))
            {
                return true;
            }

            _ = udp.VerifyChecksumIpv4(1, 2);
            return udp.Length >= 8 && udp.Length <= data.Length && udp.Payload.Length == udp.Length - 8;
        });
    }
}
