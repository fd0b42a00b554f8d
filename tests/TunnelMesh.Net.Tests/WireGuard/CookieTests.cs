using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.WireGuardTests;

public class CookieTests
{
    private static readonly Endpoint Source = Endpoint.FromIPv4(0xC0A80001, 51820);

    private sealed class Setup
    {
        public Setup()
        {
            Pair = new HandshakePair();
            Checker = new CookieChecker(Pair.Responder, Clock);
            Generator = new CookieGenerator(Pair.Responder.PublicKey, Clock);
        }

        public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

        public HandshakePair Pair { get; }

        public CookieChecker Checker { get; }

        public CookieGenerator Generator { get; }

        public byte[] SignedInitiation(int second)
        {
            var message = Pair.Initiation(second);
            Generator.AddMacs(message);
            return message;
        }
    }

    [Fact]
    public void Mac1_is_checked_and_any_change_breaks_it()
    {
        var s = new Setup();
        var message = s.SignedInitiation(0);
        Assert.True(s.Checker.CheckMac1(message));
        Assert.True(InitiationMessage.TryCreate(message, out var view));
        Assert.True(view.Mac2.SequenceEqual(new byte[16])); // no cookie yet

        var tampered = message.ToArray();
        tampered[10] ^= 1;
        Assert.False(s.Checker.CheckMac1(tampered));

        // mac1 is keyed by the receiver's public key: another node's checker refuses it.
        var other = new CookieChecker(new LocalIdentity(NodePrivateKey.Generate()), s.Clock);
        Assert.False(other.CheckMac1(message));
        Assert.False(s.Checker.CheckMac1(message.AsSpan(0, 147)));
    }

    [Fact]
    public void Cookie_round_trip_gives_a_valid_mac2_for_120_seconds()
    {
        var s = new Setup();
        var first = s.SignedInitiation(0);
        Assert.False(s.Checker.CheckMac2(first, Source));

        var reply = new byte[WireGuardSpec.CookieReplySize];
        s.Checker.CreateReply(reply, first, receiverIndex: 0x1111, Source);
        Assert.True(CookieReplyMessage.TryCreate(reply, out var view));
        Assert.Equal(0x1111u, view.Receiver);
        Assert.True(s.Generator.ConsumeReply(reply));

        var second = s.SignedInitiation(1);
        Assert.True(s.Checker.CheckMac1(second));
        Assert.True(s.Checker.CheckMac2(second, Source));
        Assert.False(s.Checker.CheckMac2(second, Endpoint.FromIPv4(0xC0A80001, 51821)));
        Assert.False(s.Checker.CheckMac2(second, Endpoint.FromIPv4(0xC0A80002, 51820)));

        s.Clock.Advance(TimeSpan.FromSeconds(119));
        Assert.True(s.Checker.CheckMac2(s.SignedInitiation(2), Source));

        s.Clock.Advance(TimeSpan.FromSeconds(2)); // cookie and secret are now older than 120 s
        var late = s.SignedInitiation(3);
        Assert.True(late.AsSpan(WireGuardSpec.Initiation.Mac2).SequenceEqual(new byte[16]));
        Assert.False(s.Checker.CheckMac2(late, Source));
    }

    [Fact]
    public void Responses_carry_macs_too()
    {
        var s = new Setup();
        var generatorToInitiator = new CookieGenerator(s.Pair.Initiator.PublicKey, s.Clock);
        var checkerAtInitiator = new CookieChecker(s.Pair.Initiator, s.Clock);
        var initiation = s.SignedInitiation(0);
        Assert.Equal(HandshakeResult.Ok, NoiseHandshake.ConsumeInitiation(s.Pair.Responder, initiation, s.Pair.FindOnResponder, out _));
        var response = new byte[WireGuardSpec.ResponseSize];
        s.Pair.ResponderSide.CreateResponse(response, 5);
        generatorToInitiator.AddMacs(response);
        Assert.True(checkerAtInitiator.CheckMac1(response));
        Assert.Equal(HandshakeResult.Ok, s.Pair.InitiatorSide.ConsumeResponse(response));
    }

    [Fact]
    public void A_reply_is_bound_to_the_mac1_of_the_last_message_sent()
    {
        var s = new Setup();
        var reply = new byte[WireGuardSpec.CookieReplySize];
        var first = s.SignedInitiation(0);
        s.Checker.CreateReply(reply, first, 1, Source);

        var fresh = new CookieGenerator(s.Pair.Responder.PublicKey, s.Clock);
        Assert.False(fresh.ConsumeReply(reply)); // nothing sent yet

        s.SignedInitiation(1); // a newer message: the reply to 'first' no longer matches
        Assert.False(s.Generator.ConsumeReply(reply));

        var tampered = reply.ToArray();
        tampered[40] ^= 1;
        Assert.False(s.Generator.ConsumeReply(tampered));
        Assert.False(s.Generator.ConsumeReply(reply.AsSpan(0, 63)));
    }

    [Fact]
    public void Secret_rotates_after_120_seconds_so_old_cookies_stop_working()
    {
        var s = new Setup();
        var reply = new byte[WireGuardSpec.CookieReplySize];
        s.Checker.CreateReply(reply, s.SignedInitiation(0), 1, Source);
        Assert.True(s.Generator.ConsumeReply(reply));

        s.Clock.Advance(TimeSpan.FromSeconds(121));
        var m = s.SignedInitiation(1);
        s.Checker.CreateReply(reply, m, 1, Source); // new secret
        Assert.True(s.Generator.ConsumeReply(reply));
        Assert.True(s.Checker.CheckMac2(s.SignedInitiation(2), Source));
    }

    [Fact]
    public void IPv6_sources_are_distinguished()
    {
        var s = new Setup();
        var v6 = Endpoint.FromBytes(Convert.FromHexString("fd000000000000000000000000000001"), 1);
        var reply = new byte[WireGuardSpec.CookieReplySize];
        s.Checker.CreateReply(reply, s.SignedInitiation(0), 1, v6);
        Assert.True(s.Generator.ConsumeReply(reply));
        var m = s.SignedInitiation(1);
        Assert.True(s.Checker.CheckMac2(m, v6));
        Assert.False(s.Checker.CheckMac2(m, Source));
    }
}
