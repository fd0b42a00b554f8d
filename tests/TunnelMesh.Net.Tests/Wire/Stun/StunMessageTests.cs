using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Wire.Stun;

namespace TunnelMesh.Net.Tests.Wire.Stun;

public class StunMessageTests
{
    private static readonly StunTransactionId VectorId = StunTransactionId.Read(Convert.FromHexString("b7e7a701bc34d686fa87dfae"));

    // RFC 5769 §2.1: sample request (SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT).
    private static readonly byte[] SampleRequest = Convert.FromHexString(
        "000100582112a442b7e7a701bc34d686fa87dfae" +
        "802200105354554e207465737420636c69656e74" +
        "002400046e0001ff" +
        "80290008932ff9b151263b36" +
        "000600096576746a3a68367659202020" +
        "000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2" +
        "80280004e57a3bcf");

    // RFC 5769 §2.2: sample IPv4 response, XOR-MAPPED-ADDRESS 192.0.2.1:32853.
    private static readonly byte[] SampleIpv4Response = Convert.FromHexString(
        "0101003c2112a442b7e7a701bc34d686fa87dfae" +
        "8022000b7465737420766563746f7220" +
        "002000080001a147e112a643" +
        "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7" +
        "80280004c07d4c96");

    // RFC 5769 §2.3: sample IPv6 response, XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853.
    private static readonly byte[] SampleIpv6Response = Convert.FromHexString(
        "010100482112a442b7e7a701bc34d686fa87dfae" +
        "8022000b7465737420766563746f7220" +
        "002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9" +
        "00080014a382954e4be67bf11784c97c8292c275bfe3ed41" +
        "80280004c8fb0b4c");

    [Fact]
    public void Rfc5769_sample_request_parses_with_a_valid_fingerprint()
    {
        Assert.True(StunMessage.TryParse(SampleRequest, out var m));
        Assert.Equal(StunSpec.BindingRequest, m.Type);
        Assert.Equal(VectorId, m.TransactionId);
        Assert.True(m.HasFingerprint);
        Assert.Null(m.Mapped);
    }

    [Fact]
    public void Rfc5769_sample_responses_give_their_mapped_addresses()
    {
        Assert.True(StunMessage.TryParse(SampleIpv4Response, out var v4));
        Assert.Equal((StunSpec.BindingSuccess, VectorId, true), (v4.Type, v4.TransactionId, v4.HasFingerprint));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 32853), v4.Mapped);

        Assert.True(StunMessage.TryParse(SampleIpv6Response, out var v6));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8:1234:5678:11:2233:4455:6677"), 32853), v6.Mapped);
        Assert.True(v6.HasFingerprint);
    }

    [Fact]
    public void Our_xor_mapped_address_is_byte_for_byte_the_rfc5769_one()
    {
        var buffer = new byte[64];
        int n = StunMessage.WriteBindingSuccess(buffer, VectorId, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 32853), fingerprint: false);
        Assert.Equal(32, n);
        Assert.Equal(SampleIpv4Response[36..48], buffer[20..32]);
        n = StunMessage.WriteBindingSuccess(buffer, VectorId, new IPEndPoint(IPAddress.Parse("2001:db8:1234:5678:11:2233:4455:6677"), 32853), fingerprint: false);
        Assert.Equal(SampleIpv6Response[36..60], buffer[20..n]);
    }

    [Fact]
    public void A_flipped_bit_anywhere_before_the_fingerprint_is_caught()
    {
        for (int i = 0; i < SampleIpv4Response.Length - 8; i++) // up to the FINGERPRINT attribute
        {
            if (i is >= 2 and < 8)
            {
                continue; // length and cookie: rejected before the fingerprint is looked at
            }

            var copy = (byte[])SampleIpv4Response.Clone();
            copy[i] ^= 0x10;
            Assert.False(StunMessage.TryParse(copy, out _), $"bit flipped at byte {i} accepted");
        }
    }

    [Property]
    public Property Write_then_parse_is_identity_for_requests_and_responses()
    {
        var gen = from id in Gen.Two(WireGen.UInt).Select(t => new StunTransactionId(t.Item1, ((ulong)t.Item1 << 32) | t.Item2))
                  from v6 in Gen.Elements(false, true)
                  from bytes in Gen.ArrayOf(WireGen.Byte, 16)
                  from port in WireGen.UShort
                  from fingerprint in Gen.Elements(false, true)
                  select (id, new IPEndPoint(new IPAddress(v6 ? bytes : bytes[..4]), port), fingerprint);
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (id, endpoint, fingerprint) = t;
            var buffer = new byte[64];
            int n = StunMessage.WriteBindingRequest(buffer, id, fingerprint);
            bool request = StunMessage.TryParse(buffer.AsSpan(0, n), out var r) && r == new StunMessage(StunSpec.BindingRequest, id, null, fingerprint);
            n = StunMessage.WriteBindingSuccess(buffer, id, endpoint, fingerprint);
            bool response = StunMessage.TryParse(buffer.AsSpan(0, n), out var s) && s.Type == StunSpec.BindingSuccess && s.TransactionId == id && endpoint.Equals(s.Mapped) && s.HasFingerprint == fingerprint;
            return request && response;
        });
    }

    [Property]
    public Property Wireguard_messages_are_never_taken_for_stun()
    {
        // Types 1-4 then three zero bytes, even with the cookie at bytes 4-7 and at every
        // WireGuard message size: the zero length field never matches the datagram.
        return Prop.ForAll(Gen.Choose(1, 4).Two().ToArbitrary(), t =>
        {
            foreach (int size in new[] { 148, 92, 64, 32, 48, 1452 })
            {
                var message = new byte[size];
                message[0] = (byte)t.Item1;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), StunSpec.MagicCookie);
                if (StunMessage.IsStun(message))
                {
                    return false;
                }
            }

            return true;
        });
    }

    [Theory]
    [InlineData("0101000c2112a442b7e7a701bc34d686fa87dfae00200008", "an attribute past the end")]
    [InlineData("0101000c2112a442b7e7a701bc34d686fa87dfae002000080003a147e112a643", "a length field that does not match")]
    [InlineData("010100082112a442b7e7a701bc34d686fa87dfae002000040003a147", "an address family that does not exist")]
    [InlineData("0101000c2112a442b7e7a701bc34d686fa87dfae002000080002a147e112a643", "an IPv6 family with 4 address bytes")]
    [InlineData("010100142112a442b7e7a701bc34d686fa87dfae80280004000000000020000800010000e112a643", "an attribute after the FINGERPRINT")]
    [InlineData("c10100002112a442b7e7a701bc34d686fa87dfae", "the top bits set")]
    [InlineData("010100002112a443b7e7a701bc34d686fa87dfae", "a wrong cookie")]
    [InlineData("010100002112a442b7e7a701bc34d686fa87df", "a short header")]
    public void Malformed_messages_are_rejected(string hex, string what) =>
        Assert.False(StunMessage.TryParse(Convert.FromHexString(hex), out _), what);

    [Property]
    public Property Random_bytes_never_throw()
    {
        return Prop.ForAll(WireGen.Bytes(120).ToArbitrary(), bytes =>
        {
            if (bytes.Length >= 20)
            {
                // Make it pass the first checks so the attribute walk runs.
                bytes[0] &= 0x3F;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), (ushort)((bytes.Length - 20) & ~3));
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), StunSpec.MagicCookie);
            }

            return !StunMessage.TryParse(bytes, out var m) || m.TransactionId == StunTransactionId.Read(bytes.AsSpan(8));
        });
    }
}
