using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Wire.PortMapping;

namespace TunnelMesh.Net.Tests.Wire.PortMapping;

public class PortMappingMessageTests
{
    // Captured from miniupnpd 2.3.1 (Debian miniupnpd-nftables) in a namespace, external address 203.0.113.1,
    // epoch 9 s, for a mapping of UDP 41641 with 7200 s asked.
    private static readonly byte[] MiniupnpdExternalAddress = Convert.FromHexString("0080000000000009cb007101");
    private static readonly byte[] MiniupnpdNatPmpMap = Convert.FromHexString("0081000000000009a2a9a2a900001c20");
    private static readonly byte[] MiniupnpdPcpMap = Convert.FromHexString(
        "0281000000001c2000000009000000000000000000000000" +
        "031717f8e9b3d4bb6412ec4c" + "11000000" + "a2a9" + "a2a9" + "00000000000000000000ffffcb007101");

    private static readonly Gen<IPAddress> Ipv4 = Gen.ArrayOf(WireGen.Byte, 4).Select(b => new IPAddress(b));

    [Fact]
    public void Miniupnpd_answers_parse()
    {
        Assert.True(NatPmpMessage.TryParseResponse(MiniupnpdExternalAddress, out var ext));
        Assert.Equal((NatPmpSpec.OpExternalAddress, NatPmpSpec.ResultSuccess, 9u, 0xCB007101u), (ext.RequestOpcode, ext.Result, ext.Epoch, ext.ExternalAddress));

        Assert.True(NatPmpMessage.TryParseResponse(MiniupnpdNatPmpMap, out var map));
        Assert.Equal((NatPmpSpec.OpMapUdp, (ushort)41641, (ushort)41641, 7200u, 9u), (map.RequestOpcode, map.InternalPort, map.ExternalPort, map.Lifetime, map.Epoch));

        Assert.True(PcpMessage.TryParseResponse(MiniupnpdPcpMap, out var pcp));
        Assert.True(pcp.HasMapBody);
        Assert.Equal(PcpNonce.Read(Convert.FromHexString("031717f8e9b3d4bb6412ec4c")), pcp.Nonce);
        Assert.Equal((PcpSpec.OpMap, PcpSpec.ResultSuccess, 7200u, 9u, PcpSpec.ProtocolUdp, (ushort)41641, (ushort)41641), (pcp.Opcode, pcp.Result, pcp.Lifetime, pcp.Epoch, pcp.Protocol, pcp.InternalPort, pcp.ExternalPort));
        Assert.Equal(IPAddress.Parse("203.0.113.1"), pcp.ExternalAddress);
    }

    [Fact]
    public void Requests_have_the_rfc_layout()
    {
        var buffer = new byte[PcpSpec.MaxLength];
        Assert.Equal(2, NatPmpMessage.WriteExternalAddressRequest(buffer));
        Assert.Equal("0000", Convert.ToHexString(buffer, 0, 2));
        Assert.Equal(12, NatPmpMessage.WriteMapRequest(buffer, NatPmpSpec.OpMapUdp, 41641, 41641, 7200));
        Assert.Equal("00010000A2A9A2A900001C20", Convert.ToHexString(buffer, 0, 12));

        var nonce = PcpNonce.Read(Convert.FromHexString("0102030405060708090a0b0c"));
        Assert.Equal(60, PcpMessage.WriteMapRequest(buffer, 7200, IPAddress.Parse("198.51.100.2"), nonce, PcpSpec.ProtocolUdp, 41641, 41641, null));
        Assert.Equal(
            "02010000" + "00001C20" + "00000000000000000000FFFFC6336402" +
            "0102030405060708090A0B0C" + "11000000" + "A2A9" + "A2A9" + "00000000000000000000FFFF00000000",
            Convert.ToHexString(buffer, 0, 60));
    }

    [Fact]
    public void Wrong_lengths_versions_and_directions_are_refused()
    {
        Assert.False(NatPmpMessage.TryParseResponse(MiniupnpdExternalAddress.AsSpan(0, 11), out _));
        Assert.False(NatPmpMessage.TryParseResponse([.. MiniupnpdExternalAddress, 0], out _));
        Assert.False(NatPmpMessage.TryParseResponse(MiniupnpdNatPmpMap.AsSpan(0, 12), out _)); // a mapping answer cut to the other's length
        Assert.False(NatPmpMessage.TryParseResponse(MiniupnpdNatPmpMap.AsSpan(0, 8), out _)); // the header alone with success
        byte[] request = (byte[])MiniupnpdNatPmpMap.Clone();
        request[1] = NatPmpSpec.OpMapUdp; // a request, not a response
        Assert.False(NatPmpMessage.TryParseResponse(request, out _));
        byte[] version = (byte[])MiniupnpdNatPmpMap.Clone();
        version[0] = 1;
        Assert.False(NatPmpMessage.TryParseResponse(version, out _));

        Assert.False(PcpMessage.TryParseResponse(MiniupnpdPcpMap.AsSpan(0, 56), out _));
        Assert.False(PcpMessage.TryParseResponse([.. MiniupnpdPcpMap, 0, 0], out _)); // not a multiple of 4
        Assert.False(PcpMessage.TryParseResponse([.. MiniupnpdPcpMap, 1, 0, 0, 8], out _)); // an option longer than the datagram
        Assert.True(PcpMessage.TryParseResponse([.. MiniupnpdPcpMap, 1, 0, 0, 4, 9, 9, 9, 9], out _)); // a well-formed option is skipped
        Assert.False(PcpMessage.TryParseResponse(MiniupnpdPcpMap.AsSpan(0, 24), out _)); // a MAP success without its body
        byte[] pcpRequest = (byte[])MiniupnpdPcpMap.Clone();
        pcpRequest[1] = PcpSpec.OpMap;
        Assert.False(PcpMessage.TryParseResponse(pcpRequest, out _));
    }

    [Fact]
    public void A_nat_pmp_only_gateway_answers_pcp_with_the_8_byte_unsupported_version()
    {
        // RFC 6886 §3.5 / RFC 6887 §9: version 0, opcode 128 + 1, result 1, epoch.
        var answer = Convert.FromHexString("0081000100000009");
        Assert.True(NatPmpMessage.TryParseResponse(answer, out var r));
        Assert.Equal(NatPmpSpec.ResultUnsupportedVersion, r.Result);
        Assert.False(PcpMessage.TryParseResponse(answer, out _));
    }

    [Property]
    public Property Nat_pmp_write_then_parse_is_identity()
    {
        var gen = from op in Gen.Elements(NatPmpSpec.OpExternalAddress, NatPmpSpec.OpMapUdp, NatPmpSpec.OpMapTcp)
                  from result in Gen.Elements<ushort>(0, 1, 2, 3, 4, 5)
                  from epoch in WireGen.UInt
                  from address in WireGen.UInt
                  from ports in Gen.Two(WireGen.UShort)
                  from lifetime in WireGen.UInt
                  select op == NatPmpSpec.OpExternalAddress
                      ? new NatPmpResponse((byte)(op | 128), result, epoch, address, 0, 0, 0)
                      : new NatPmpResponse((byte)(op | 128), result, epoch, 0, ports.Item1, ports.Item2, lifetime);
        return Prop.ForAll(gen.ToArbitrary(), response =>
        {
            var buffer = new byte[16];
            int n = NatPmpMessage.WriteResponse(buffer, response);
            return NatPmpMessage.TryParseResponse(buffer.AsSpan(0, n), out var parsed) && parsed == response;
        });
    }

    [Property]
    public Property Pcp_map_write_then_parse_is_identity()
    {
        var gen = from nonce in Gen.Two(WireGen.UInt).Select(t => new PcpNonce(t.Item1, ((ulong)t.Item2 << 32) | t.Item1))
                  from result in Gen.Elements<byte>(0, 2, 8, 11)
                  from lifetime in WireGen.UInt
                  from epoch in WireGen.UInt
                  from protocol in Gen.Elements(PcpSpec.ProtocolUdp, PcpSpec.ProtocolTcp)
                  from ports in Gen.Two(WireGen.UShort)
                  from address in Ipv4
                  select new PcpResponse(PcpSpec.OpMap, result, lifetime, epoch, true, nonce, protocol, ports.Item1, ports.Item2, address);
        return Prop.ForAll(gen.ToArbitrary(), response =>
        {
            var buffer = new byte[60];
            int n = PcpMessage.WriteMapResponse(buffer, response);
            return n == 60 && PcpMessage.TryParseResponse(buffer, out var parsed) && parsed == response;
        });
    }

    [Property]
    public Property Random_bytes_never_throw_and_what_parses_has_a_valid_length()
    {
        return Prop.ForAll(WireGen.Bytes(1104).ToArbitrary(), bytes =>
        {
            bool pmp = NatPmpMessage.TryParseResponse(bytes, out _);
            bool pcp = PcpMessage.TryParseResponse(bytes, out _);
            return (!pmp || bytes.Length is 8 or 12 or 16) && (!pcp || (bytes.Length % 4 == 0 && bytes.Length is >= 24 and <= 1100));
        });
    }

    [Property]
    public Property A_pcp_answer_with_one_byte_flipped_in_its_fixed_part_never_parses_as_the_same_mapping()
    {
        return Prop.ForAll(Gen.Choose(0, 59).ToArbitrary(), Gen.Choose(1, 255).ToArbitrary(), (index, xor) =>
        {
            byte[] copy = (byte[])MiniupnpdPcpMap.Clone();
            copy[index] ^= (byte)xor;
            Assert.True(PcpMessage.TryParseResponse(MiniupnpdPcpMap, out var original));
            return !PcpMessage.TryParseResponse(copy, out var parsed) || parsed != original
                || index is 2 or (>= 12 and < 24) or (>= 37 and < 40); // reserved bytes carry nothing
        });
    }
}
