using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Wire;

public class InternetChecksumTests
{
    [Fact]
    public void Rfc1071_numerical_example()
    {
        // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2; the checksum is its complement.
        var data = WireGen.FromHex("0001f203f4f5f6f7");
        Assert.Equal(0xDDF2u, InternetChecksum.Accumulate(data));
        Assert.Equal((ushort)0x220D, InternetChecksum.Compute(data));
    }

    [Fact]
    public void Empty_and_single_byte()
    {
        Assert.Equal((ushort)0xFFFF, InternetChecksum.Compute([]));
        Assert.Equal((ushort)0x54FF, InternetChecksum.Compute([0xAB]));
    }

    [Property]
    public Property Matches_reference_for_random_lengths_including_odd()
    {
        return Prop.ForAll(WireGen.Bytes(3000).ToArbitrary(), data => InternetChecksum.Compute(data) == WireGen.ReferenceChecksum(data));
    }

    [Fact]
    public void Large_all_ones_input_does_not_overflow()
    {
        var data = new byte[65535];
        Array.Fill(data, (byte)0xFF);
        Assert.Equal(WireGen.ReferenceChecksum(data), InternetChecksum.Compute(data));
    }

    [Property]
    public Property Incremental_over_even_splits_equals_whole()
    {
        var gen = WireGen.Bytes(2000).SelectMany(d => Gen.Choose(0, d.Length / 2).Select(half => (d, half * 2)));
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (data, split) = t;
            uint partial = InternetChecksum.Accumulate(data.AsSpan(0, split));
            return InternetChecksum.Finish(InternetChecksum.Accumulate(data.AsSpan(split), partial)) == WireGen.ReferenceChecksum(data);
        });
    }

    [Property]
    public Property Ipv4_pseudo_header_matches_reference()
    {
        var gen = Gen.Zip(Gen.Two(WireGen.UInt), Gen.Zip(WireGen.Byte, WireGen.UShort));
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var ((src, dst), (proto, length)) = t;
            var pseudo = new byte[12];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(pseudo, src);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(pseudo.AsSpan(4), dst);
            pseudo[9] = proto;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(pseudo.AsSpan(10), length);
            return InternetChecksum.Finish(InternetChecksum.PseudoHeaderIpv4(src, dst, proto, length)) == WireGen.ReferenceChecksum(pseudo);
        });
    }

    [Property]
    public Property Ipv6_pseudo_header_matches_reference()
    {
        var gen = Gen.Zip(Gen.ArrayOf(WireGen.Byte, 32), Gen.Zip(WireGen.Byte, WireGen.UInt));
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (addresses, (next, length)) = t;
            var pseudo = new byte[40];
            addresses.CopyTo(pseudo, 0);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(pseudo.AsSpan(32), length);
            pseudo[39] = next;
            uint sum = InternetChecksum.PseudoHeaderIpv6(addresses.AsSpan(0, 16), addresses.AsSpan(16, 16), next, length);
            return InternetChecksum.Finish(sum) == WireGen.ReferenceChecksum(pseudo);
        });
    }
}
