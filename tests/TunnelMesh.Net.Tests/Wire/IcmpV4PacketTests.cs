using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Wire;

public class IcmpV4PacketTests
{
    [Property]
    public Property Echo_parse_of_emit_is_identity_and_checksum_matches_reference()
    {
        var gen = from request in Gen.Elements(true, false)
                  from id in WireGen.UShort
                  from seq in WireGen.UShort
                  from payload in WireGen.Bytes(600)
                  select (new IcmpV4Echo(request, id, seq), payload);
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (echo, payload) = t;
            var message = new byte[8 + payload.Length];
            payload.CopyTo(message, 8);
            echo.Emit(message);
            var zeroed = (byte[])message.Clone();
            zeroed[2] = zeroed[3] = 0;
            return IcmpV4Packet.TryCreate(message, out var icmp)
                && icmp.VerifyChecksum()
                && icmp.Checksum == WireGen.ReferenceChecksum(zeroed)
                && IcmpV4Echo.TryParse(icmp, out var parsed) && parsed == echo
                && icmp.Payload.SequenceEqual(payload);
        });
    }

    [Fact]
    public void Linux_ping_style_echo_request_fixture()
    {
        // An echo request as iputils ping lays it out (type 8, code 0, id 0x1c46, seq 1, 8-byte
        // timestamp then 0x10..0x37); its checksum is whatever makes the message sum to 0xFFFF.
        var message = new byte[64];
        message[0] = 8;
        message[4] = 0x1c;
        message[5] = 0x46;
        message[7] = 1;
        for (int i = 16; i < 64; i++)
        {
            message[i] = (byte)(i - 16 + 0x10);
        }

        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), WireGen.ReferenceChecksum(message));
        Assert.True(IcmpV4Packet.TryCreate(message, out var icmp));
        Assert.True(icmp.VerifyChecksum());
        Assert.Equal(IcmpV4Type.EchoRequest, icmp.Type);
        Assert.Equal(0x1c46, icmp.Identifier);
        Assert.Equal(1, icmp.SequenceNumber);
        Assert.True(IcmpV4Echo.TryParse(icmp, out var echo));
        Assert.True(echo.IsRequest);
        Assert.Equal(56, icmp.Payload.Length);
        icmp.Payload[0] ^= 1;
        Assert.False(icmp.VerifyChecksum());
    }

    [Fact]
    public void Destination_unreachable_quotes_the_original()
    {
        var original = WireGen.UdpPacket(0x64400001, 0x64400002, 1234, 9, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        var message = new byte[8 + original.Length];
        original.CopyTo(message, 8);
        Assert.True(IcmpV4Packet.TryCreate(message, out var icmp));
        icmp.Type = IcmpV4Type.DestinationUnreachable;
        icmp.Code = (byte)IcmpV4UnreachableCode.PortUnreachable;
        icmp.FillChecksum();
        Assert.True(icmp.VerifyChecksum());
        Assert.True(icmp.IsError);
        Assert.False(IcmpV4Echo.TryParse(icmp, out _));
        Assert.True(Ipv4Packet.TryCreate(icmp.Payload, out var quoted));
        Assert.Equal(0x64400002u, quoted.Destination);
        Assert.True(UdpDatagram.TryCreate(quoted.Payload, out var udp));
        Assert.Equal(9, udp.DestinationPort);
    }

    [Property]
    public Property Short_or_random_input_never_throws()
    {
        Assert.False(IcmpV4Packet.TryCreate(new byte[7], out _));
        return Prop.ForAll(WireGen.Bytes(40).ToArbitrary(), data =>
        {
            if (IcmpV4Packet.TryCreate(data, out var icmp))
            {
                _ = icmp.VerifyChecksum();
                _ = IcmpV4Echo.TryParse(icmp, out _);
                return data.Length >= 8 && icmp.Payload.Length == data.Length - 8;
            }

            return data.Length < 8;
        });
    }
}
