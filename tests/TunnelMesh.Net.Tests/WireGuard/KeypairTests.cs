using TunnelMesh.Net.Tests.Support;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.WireGuardTests;

/// <summary>
/// Transport seal/open. Tests marked <c>Needs=ReplayWindow</c> open messages successfully and so rely
/// on the real <see cref="ReplayWindow"/> (another unit, merged separately).
/// </summary>
public class KeypairTests
{
    private static (Keypair Sender, Keypair Receiver) Keys()
    {
        var send = Enumerable.Range(1, 32).Select(x => (byte)x).ToArray();
        var receive = Enumerable.Range(101, 32).Select(x => (byte)x).ToArray();
        return (new Keypair(send, receive, 1, 2, isInitiator: true, 0), new Keypair(receive, send, 2, 1, isInitiator: false, 0));
    }

    [Fact]
    public void Seal_pads_to_16_appends_the_tag_and_prepends_the_header()
    {
        var (sender, _) = Keys();
        var packet = HandshakePair.Packet(new byte[21]);
        int offset = packet.Offset;
        Assert.True(sender.TrySeal(packet));
        Assert.Equal(offset - 16, packet.Offset);
        Assert.Equal(16 + 32 + 16, packet.Length);
        Assert.True(TransportMessage.TryCreate(packet.Span, out var view));
        Assert.Equal(2u, view.Receiver);
        Assert.Equal(0UL, view.Counter);

        var keepalive = HandshakePair.Packet([]);
        Assert.True(sender.TrySeal(keepalive));
        Assert.Equal(32, keepalive.Length);
        Assert.True(TransportMessage.TryCreate(keepalive.Span, out view));
        Assert.Equal(1UL, view.Counter);
        Assert.Equal(2UL, sender.SendCounter);
    }

    [Property]
    [Trait("Needs", "ReplayWindow")]
    public Property Open_of_seal_is_the_plaintext_for_any_length_up_to_1500()
    {
        var (sender, receiver) = Keys();
        var gen =
            from length in Gen.Choose(0, 1500)
            from bytes in Gen.ArrayOf(ArbMap.Default.GeneratorFor<byte>(), length)
            select bytes;
        return Prop.ForAll(gen.ToArbitrary(), plaintext =>
        {
            var packet = HandshakePair.Packet(plaintext);
            bool sealedOk = sender.TrySeal(packet);
            var result = receiver.TryOpen(packet);
            return sealedOk
                && result == OpenResult.Ok
                && packet.Length == ((plaintext.Length + 15) & ~15)
                && packet.Span[..plaintext.Length].SequenceEqual(plaintext)
                && !packet.Span[plaintext.Length..].ContainsAnyExcept((byte)0);
        });
    }

    [Fact]
    public void Wrong_key_fails_to_open()
    {
        var (sender, _) = Keys();
        var other = new Keypair(new byte[32], new byte[32], 2, 1, isInitiator: false, 0);
        var packet = HandshakePair.Packet("secret"u8);
        Assert.True(sender.TrySeal(packet));
        Assert.Equal(OpenResult.DecryptionFailed, other.TryOpen(packet));
    }

    [Fact]
    public void Every_tampered_byte_after_the_receiver_index_fails_to_open()
    {
        var (sender, receiver) = Keys();
        var original = HandshakePair.Packet("a packet of some length, 40 bytes long.."u8);
        Assert.True(sender.TrySeal(original));
        var bytes = original.Span.ToArray();
        for (int i = WireGuardSpec.Transport.Counter; i < bytes.Length; i++)
        {
            var copy = bytes.ToArray();
            copy[i] ^= 0x04;
            var packet = HandshakePair.Packet(copy);
            Assert.Equal(OpenResult.DecryptionFailed, receiver.TryOpen(packet));
        }

        Assert.Equal(OpenResult.DecryptionFailed, receiver.TryOpen(HandshakePair.Packet(bytes.AsSpan(0, 31))));
    }

    [Fact]
    [Trait("Needs", "ReplayWindow")]
    public void A_replayed_message_is_refused()
    {
        var (sender, receiver) = Keys();
        var packet = HandshakePair.Packet("once"u8);
        Assert.True(sender.TrySeal(packet));
        var copy = packet.Span.ToArray();
        Assert.Equal(OpenResult.Ok, receiver.TryOpen(packet));
        Assert.Equal(OpenResult.Replay, receiver.TryOpen(HandshakePair.Packet(copy)));
    }

    [Fact]
    public void Seal_refuses_when_the_buffer_has_no_head_room()
    {
        var (sender, _) = Keys();
        var packet = new PacketBuffer(null);
        packet.Reset(headRoom: 8);
        packet.Length = 10;
        Assert.False(sender.TrySeal(packet));
        Assert.Equal(0UL, sender.SendCounter);
    }

    [Fact]
    public void Dispose_twice_is_safe()
    {
        var (sender, receiver) = Keys();
        sender.Dispose();
        sender.Dispose();
        receiver.Dispose();
    }

    [Fact]
    [Trait("Needs", "ReplayWindow")]
    public void Seal_and_open_allocate_nothing()
    {
        var (sender, receiver) = Keys();
        var packet = new PacketBuffer(null);
        void RoundTrip()
        {
            packet.Reset();
            packet.Length = 1420;
            sender.TrySeal(packet);
            if (receiver.TryOpen(packet) != OpenResult.Ok)
            {
                throw new InvalidOperationException("open failed");
            }
        }

        Allocations.AssertNonePerCall(10_000, _ => RoundTrip(), "seal + open of 1420 bytes");
    }

    [Fact]
    public void Seal_allocates_nothing()
    {
        var (sender, _) = Keys();
        var packet = new PacketBuffer(null);
        Allocations.AssertNonePerCall(10_000, _ =>
        {
            packet.Reset();
            packet.Length = 1420;
            sender.TrySeal(packet);
        }, "seal of 1420 bytes");
    }
}
