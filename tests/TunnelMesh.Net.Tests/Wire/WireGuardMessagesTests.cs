using System.Buffers.Binary;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Wire;

public class WireGuardMessagesTests
{
    private static byte[] Message(uint type, int length)
    {
        var bytes = new byte[length];
        if (length >= 4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, type);
        }

        return bytes;
    }

    [Theory]
    [InlineData(147, false)]
    [InlineData(148, true)]
    [InlineData(149, false)]
    public void Initiation_is_exactly_148_bytes(int length, bool ok) =>
        Assert.Equal(ok, InitiationMessage.TryCreate(Message(1, length), out _));

    [Theory]
    [InlineData(91, false)]
    [InlineData(92, true)]
    [InlineData(93, false)]
    public void Response_is_exactly_92_bytes(int length, bool ok) =>
        Assert.Equal(ok, ResponseMessage.TryCreate(Message(2, length), out _));

    [Theory]
    [InlineData(63, false)]
    [InlineData(64, true)]
    [InlineData(65, false)]
    public void Cookie_reply_is_exactly_64_bytes(int length, bool ok) =>
        Assert.Equal(ok, CookieReplyMessage.TryCreate(Message(3, length), out _));

    [Theory]
    [InlineData(31, false)]
    [InlineData(32, true)]
    [InlineData(33, true)] // content need not be a multiple of 16 on receive
    [InlineData(1500, true)]
    public void Transport_is_at_least_32_bytes(int length, bool ok) =>
        Assert.Equal(ok, TransportMessage.TryCreate(Message(4, length), out _));

    [Fact]
    public void Wrong_type_or_nonzero_reserved_bytes_are_rejected()
    {
        Assert.False(InitiationMessage.TryCreate(Message(2, 148), out _));
        Assert.False(ResponseMessage.TryCreate(Message(1, 92), out _));
        Assert.False(CookieReplyMessage.TryCreate(Message(4, 64), out _));
        Assert.False(TransportMessage.TryCreate(Message(3, 64), out _));
        var reserved = Message(1, 148);
        reserved[2] = 1;
        Assert.False(InitiationMessage.TryCreate(reserved, out _));
        Assert.False(TransportMessage.TryCreate([], out _));
    }

    [Fact]
    public void Fields_are_read_little_endian_at_the_spec_offsets()
    {
        var response = Message(2, 92);
        BinaryPrimitives.WriteUInt32LittleEndian(response.AsSpan(4), 0x11223344);
        BinaryPrimitives.WriteUInt32LittleEndian(response.AsSpan(8), 0x55667788);
        response[12] = 0xE1;
        response[44] = 0xA1;
        response[60] = 0x31;
        response[76] = 0x32;
        Assert.True(ResponseMessage.TryCreate(response, out var r));
        Assert.Equal(0x11223344u, r.Sender);
        Assert.Equal(0x55667788u, r.Receiver);
        Assert.Equal(0xE1, r.Ephemeral[0]);
        Assert.Equal(32, r.Ephemeral.Length);
        Assert.Equal(0xA1, r.EncryptedNothing[0]);
        Assert.Equal(0x31, r.Mac1[0]);
        Assert.Equal(0x32, r.Mac2[0]);

        var initiation = Message(1, 148);
        BinaryPrimitives.WriteUInt32LittleEndian(initiation.AsSpan(4), 7);
        initiation[8] = 0xE0;
        initiation[40] = 0x5A;
        initiation[88] = 0x7A;
        initiation[116] = 0x31;
        initiation[132] = 0x32;
        Assert.True(InitiationMessage.TryCreate(initiation, out var i));
        Assert.Equal(7u, i.Sender);
        Assert.Equal(0xE0, i.Ephemeral[0]);
        Assert.Equal(0x5A, i.EncryptedStatic[0]);
        Assert.Equal(48, i.EncryptedStatic.Length);
        Assert.Equal(0x7A, i.EncryptedTimestamp[0]);
        Assert.Equal(28, i.EncryptedTimestamp.Length);
        Assert.Equal(0x31, i.Mac1[0]);
        Assert.Equal(0x32, i.Mac2[0]);

        var cookie = Message(3, 64);
        BinaryPrimitives.WriteUInt32LittleEndian(cookie.AsSpan(4), 9);
        cookie[8] = 0x0A;
        cookie[32] = 0x0C;
        Assert.True(CookieReplyMessage.TryCreate(cookie, out var c));
        Assert.Equal(9u, c.Receiver);
        Assert.Equal(0x0A, c.Nonce[0]);
        Assert.Equal(24, c.Nonce.Length);
        Assert.Equal(0x0C, c.EncryptedCookie[0]);
        Assert.Equal(32, c.EncryptedCookie.Length);
    }

    [Fact]
    public void Transport_header_round_trips()
    {
        var bytes = new byte[48];
        TransportMessage.WriteHeader(bytes, 0xA1B2C3D4, 0x0102030405060708);
        Assert.Equal(Convert.FromHexString("04000000D4C3B2A10807060504030201"), bytes[..16]);
        Assert.True(TransportMessage.TryCreate(bytes, out var t));
        Assert.Equal(0xA1B2C3D4u, t.Receiver);
        Assert.Equal(0x0102030405060708UL, t.Counter);
        Assert.Equal(32, t.EncryptedPacket.Length);
    }
}
