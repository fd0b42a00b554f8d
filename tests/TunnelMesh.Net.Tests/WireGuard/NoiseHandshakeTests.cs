using TunnelMesh.Net.Wire;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.WireGuardTests;

/// <summary>
/// Full Noise_IKpsk2 handshakes between two identities in memory. Tests that open transport messages
/// depend on the real <see cref="ReplayWindow"/> (another unit; a stub before the merge) and are marked
/// with the trait <c>Needs=ReplayWindow</c>.
/// </summary>
public class NoiseHandshakeTests
{
    [Fact]
    public void Initiation_has_the_wire_layout_with_zero_macs()
    {
        var pair = new HandshakePair();
        var message = pair.Initiation(index: 0xDEADBEEF);
        Assert.True(InitiationMessage.TryCreate(message, out var view));
        Assert.Equal(0xDEADBEEFu, view.Sender);
        Assert.True(view.Mac1.SequenceEqual(new byte[16]));
        Assert.True(view.Mac2.SequenceEqual(new byte[16]));
        Assert.Equal(HandshakeState.InitiationCreated, pair.InitiatorSide.State);
        Assert.Equal(0xDEADBEEFu, pair.InitiatorSide.LocalIndex);
    }

    [Fact]
    public void Both_sides_reach_complementary_states_and_indices()
    {
        var pair = new HandshakePair();
        var initiation = pair.Initiation(index: 0x1111);
        Assert.Equal(HandshakeResult.Ok, NoiseHandshake.ConsumeInitiation(pair.Responder, initiation, pair.FindOnResponder, out var found));
        Assert.Same(pair.ResponderSide, found);
        Assert.Equal(HandshakeState.InitiationConsumed, pair.ResponderSide.State);
        Assert.Equal(0x1111u, pair.ResponderSide.RemoteIndex);

        var response = new byte[WireGuardSpec.ResponseSize];
        pair.ResponderSide.CreateResponse(response, 0x2222);
        Assert.True(ResponseMessage.TryCreate(response, out var view));
        Assert.Equal(0x2222u, view.Sender);
        Assert.Equal(0x1111u, view.Receiver);
        Assert.Equal(HandshakeState.ResponseCreated, pair.ResponderSide.State);

        Assert.Equal(HandshakeResult.Ok, pair.InitiatorSide.ConsumeResponse(response));
        Assert.Equal(HandshakeState.ResponseConsumed, pair.InitiatorSide.State);
        Assert.Equal(0x2222u, pair.InitiatorSide.RemoteIndex);

        using var i = pair.InitiatorSide.DeriveKeypair(10);
        using var r = pair.ResponderSide.DeriveKeypair(20);
        Assert.True(i.IsInitiator);
        Assert.False(r.IsInitiator);
        Assert.Equal((0x1111u, 0x2222u), (i.LocalIndex, i.RemoteIndex));
        Assert.Equal((0x2222u, 0x1111u), (r.LocalIndex, r.RemoteIndex));
        Assert.Equal(10, i.CreatedTimestamp);
        Assert.Equal(HandshakeState.Zeroed, pair.InitiatorSide.State);
        Assert.Equal(HandshakeState.Zeroed, pair.ResponderSide.State);
    }

    [Fact]
    [Trait("Needs", "ReplayWindow")]
    public void Derived_keypairs_match_in_both_directions()
    {
        var pair = new HandshakePair();
        var (i, r) = pair.Complete();
        using (i)
        using (r)
        {
            AssertDelivers(i, r, "hello responder"u8);
            AssertDelivers(r, i, "hello initiator"u8);
        }
    }

    [Fact]
    [Trait("Needs", "ReplayWindow")]
    public void Matching_preshared_keys_work()
    {
        var psk = Enumerable.Range(0, 32).Select(x => (byte)x).ToArray();
        var pair = new HandshakePair(psk, psk);
        var (i, r) = pair.Complete();
        using (i)
        using (r)
        {
            AssertDelivers(i, r, "with psk"u8);
        }
    }

    [Fact]
    public void Preshared_key_mismatch_fails_the_response_and_keeps_the_initiator_state()
    {
        var psk = Enumerable.Range(0, 32).Select(x => (byte)x).ToArray();
        var pair = new HandshakePair(initiatorPsk: psk, responderPsk: null);
        var initiation = pair.Initiation();
        // The PSK enters only at the response, so the initiation is accepted.
        Assert.Equal(HandshakeResult.Ok, NoiseHandshake.ConsumeInitiation(pair.Responder, initiation, pair.FindOnResponder, out _));
        var response = new byte[WireGuardSpec.ResponseSize];
        pair.ResponderSide.CreateResponse(response, 2);
        Assert.Equal(HandshakeResult.DecryptionFailed, pair.InitiatorSide.ConsumeResponse(response));
        Assert.Equal(HandshakeState.InitiationCreated, pair.InitiatorSide.State);
    }

    [Fact]
    public void Replayed_initiation_is_rejected_without_disturbing_the_handshake()
    {
        var pair = new HandshakePair();
        var first = pair.Initiation(second: 1);
        Assert.Equal(HandshakeResult.Ok, NoiseHandshake.ConsumeInitiation(pair.Responder, first, pair.FindOnResponder, out _));
        var remoteIndex = pair.ResponderSide.RemoteIndex;

        Assert.Equal(HandshakeResult.Replay, NoiseHandshake.ConsumeInitiation(pair.Responder, first, pair.FindOnResponder, out var found));
        Assert.Null(found);
        Assert.Equal(HandshakeState.InitiationConsumed, pair.ResponderSide.State);
        Assert.Equal(remoteIndex, pair.ResponderSide.RemoteIndex);

        // An older timestamp is a replay too, even in a fresh message.
        var older = pair.Initiation(second: 0, index: 99);
        Assert.Equal(HandshakeResult.Replay, NoiseHandshake.ConsumeInitiation(pair.Responder, older, pair.FindOnResponder, out _));
        Assert.Equal(remoteIndex, pair.ResponderSide.RemoteIndex);

        // The responder can still finish the first handshake, and the initiator (who moved on to the
        // 'older' initiation) cannot accept that response: only its latest initiation counts.
        var response = new byte[WireGuardSpec.ResponseSize];
        pair.ResponderSide.CreateResponse(response, 2);
        Assert.NotEqual(HandshakeResult.Ok, pair.InitiatorSide.ConsumeResponse(response));

        // A newer one is accepted.
        var newer = pair.Initiation(second: 2, index: 100);
        Assert.Equal(HandshakeResult.Ok, NoiseHandshake.ConsumeInitiation(pair.Responder, newer, pair.FindOnResponder, out _));
        Assert.Equal(100u, pair.ResponderSide.RemoteIndex);
    }

    [Fact]
    public void Unknown_peer_and_wrong_responder_are_rejected()
    {
        var pair = new HandshakePair();
        var initiation = pair.Initiation();
        Assert.Equal(HandshakeResult.UnknownPeer, NoiseHandshake.ConsumeInitiation(pair.Responder, initiation, _ => null, out var found));
        Assert.Null(found);

        var stranger = new LocalIdentity(NodePrivateKey.Generate());
        Assert.Equal(HandshakeResult.DecryptionFailed, NoiseHandshake.ConsumeInitiation(stranger, initiation, pair.FindOnResponder, out _));
        Assert.Equal(HandshakeState.Zeroed, pair.ResponderSide.State);
    }

    [Fact]
    public void Every_tampered_byte_of_an_initiation_is_rejected()
    {
        var pair = new HandshakePair();
        var initiation = pair.Initiation(second: 5);
        // Bytes 0..3 (type) make it malformed; 4..7 (sender) and the macs are not authenticated by Noise.
        for (int i = 8; i < WireGuardSpec.Initiation.Mac1; i++)
        {
            var copy = initiation.ToArray();
            copy[i] ^= 0x01;
            var result = NoiseHandshake.ConsumeInitiation(pair.Responder, copy, pair.FindOnResponder, out _);
            Assert.True(result is HandshakeResult.DecryptionFailed or HandshakeResult.Malformed, $"byte {i}: {result}");
        }

        Assert.Equal(HandshakeState.Zeroed, pair.ResponderSide.State);
        Assert.Equal(HandshakeResult.Ok, NoiseHandshake.ConsumeInitiation(pair.Responder, initiation, pair.FindOnResponder, out _));
    }

    [Fact]
    public void Tampered_response_fails_and_the_untampered_one_still_works()
    {
        var pair = new HandshakePair();
        var initiation = pair.Initiation();
        Assert.Equal(HandshakeResult.Ok, NoiseHandshake.ConsumeInitiation(pair.Responder, initiation, pair.FindOnResponder, out _));
        var response = new byte[WireGuardSpec.ResponseSize];
        pair.ResponderSide.CreateResponse(response, 2);

        for (int i = WireGuardSpec.Response.Ephemeral; i < WireGuardSpec.Response.Mac1; i++)
        {
            var copy = response.ToArray();
            copy[i] ^= 0x80;
            var result = pair.InitiatorSide.ConsumeResponse(copy);
            Assert.True(result is HandshakeResult.DecryptionFailed or HandshakeResult.Malformed, $"byte {i}: {result}");
            Assert.Equal(HandshakeState.InitiationCreated, pair.InitiatorSide.State);
        }

        var wrongReceiver = response.ToArray();
        wrongReceiver[WireGuardSpec.Response.Receiver] ^= 1;
        Assert.Equal(HandshakeResult.WrongState, pair.InitiatorSide.ConsumeResponse(wrongReceiver));

        Assert.Equal(HandshakeResult.Ok, pair.InitiatorSide.ConsumeResponse(response));
        Assert.Equal(HandshakeResult.WrongState, pair.InitiatorSide.ConsumeResponse(response));
    }

    [Fact]
    public void Malformed_messages_and_wrong_states()
    {
        var pair = new HandshakePair();
        Assert.Equal(HandshakeResult.Malformed, NoiseHandshake.ConsumeInitiation(pair.Responder, new byte[147], pair.FindOnResponder, out _));
        Assert.Equal(HandshakeResult.Malformed, pair.InitiatorSide.ConsumeResponse(new byte[92]));
        var response = new byte[92];
        response[0] = 2;
        Assert.Equal(HandshakeResult.WrongState, pair.InitiatorSide.ConsumeResponse(response));
        Assert.Throws<InvalidOperationException>(() => pair.ResponderSide.CreateResponse(new byte[92], 1));
        Assert.Throws<InvalidOperationException>(() => pair.ResponderSide.DeriveKeypair(0));
        Assert.Throws<ArgumentException>(() => new NoiseHandshake(pair.Initiator, pair.Responder.PublicKey, new byte[31]));
        Assert.Throws<ArgumentException>(() => new NoiseHandshake(pair.Initiator, NodePublicKey.FromBytes(new byte[32]), []));
    }

    [Fact]
    public void Clear_returns_to_zeroed_and_a_response_to_the_cleared_initiation_is_refused()
    {
        var pair = new HandshakePair();
        var initiation = pair.Initiation();
        Assert.Equal(HandshakeResult.Ok, NoiseHandshake.ConsumeInitiation(pair.Responder, initiation, pair.FindOnResponder, out _));
        var response = new byte[WireGuardSpec.ResponseSize];
        pair.ResponderSide.CreateResponse(response, 2);
        pair.InitiatorSide.Clear();
        Assert.Equal(HandshakeState.Zeroed, pair.InitiatorSide.State);
        Assert.Equal(HandshakeResult.WrongState, pair.InitiatorSide.ConsumeResponse(response));
    }

    [Fact]
    public void Handshake_secrets_are_zeroed_once_both_keypairs_are_derived()
    {
        var pair = new HandshakePair();
        var initiation = pair.Initiation();
        Assert.False(pair.InitiatorSide.HoldsNoHandshakeSecrets); // hash, chaining key and ephemeral are live
        Assert.Equal(HandshakeResult.Ok, NoiseHandshake.ConsumeInitiation(pair.Responder, initiation, pair.FindOnResponder, out _));
        Assert.False(pair.ResponderSide.HoldsNoHandshakeSecrets);
        var response = new byte[WireGuardSpec.ResponseSize];
        pair.ResponderSide.CreateResponse(response, 2);
        using var responderKeys = pair.ResponderSide.DeriveKeypair(0);
        Assert.True(pair.ResponderSide.HoldsNoHandshakeSecrets);

        Assert.Equal(HandshakeResult.Ok, pair.InitiatorSide.ConsumeResponse(response));
        Assert.False(pair.InitiatorSide.HoldsNoHandshakeSecrets);
        using var initiatorKeys = pair.InitiatorSide.DeriveKeypair(0);
        Assert.True(pair.InitiatorSide.HoldsNoHandshakeSecrets);
    }

    [Fact]
    public void A_failed_handshake_is_zeroed_when_cleared_and_a_removed_peer_forgets_its_static_secrets()
    {
        var pair = new HandshakePair(initiatorPsk: Enumerable.Repeat((byte)1, 32).ToArray(), responderPsk: Enumerable.Repeat((byte)2, 32).ToArray());
        var initiation = pair.Initiation();
        Assert.Equal(HandshakeResult.Ok, NoiseHandshake.ConsumeInitiation(pair.Responder, initiation, pair.FindOnResponder, out _));
        var response = new byte[WireGuardSpec.ResponseSize];
        pair.ResponderSide.CreateResponse(response, 2);
        Assert.Equal(HandshakeResult.DecryptionFailed, pair.InitiatorSide.ConsumeResponse(response));

        // The failed response leaves the initiation pending (a good response may still come) until the
        // device gives up and clears it.
        Assert.False(pair.InitiatorSide.HoldsNoHandshakeSecrets);
        pair.InitiatorSide.Clear();
        pair.ResponderSide.Clear();
        Assert.True(pair.InitiatorSide.HoldsNoHandshakeSecrets);
        Assert.True(pair.ResponderSide.HoldsNoHandshakeSecrets);
        Assert.False(pair.InitiatorSide.HoldsNoSecrets); // static-static DH and preshared key stay for the peer's life

        pair.InitiatorSide.Dispose();
        pair.InitiatorSide.Dispose();
        Assert.True(pair.InitiatorSide.HoldsNoSecrets);
        Assert.Throws<ObjectDisposedException>(() => pair.InitiatorSide.CreateInitiation(new byte[WireGuardSpec.InitiationSize], 1, HandshakePair.Time(1)));
    }

    internal static void AssertDelivers(Keypair sender, Keypair receiver, ReadOnlySpan<byte> payload)
    {
        var packet = HandshakePair.Packet(payload);
        Assert.True(sender.TrySeal(packet));
        Assert.True(TransportMessage.TryCreate(packet.Span, out var view));
        Assert.Equal(receiver.LocalIndex, view.Receiver);
        Assert.Equal(OpenResult.Ok, receiver.TryOpen(packet));
        Assert.True(packet.Span[..payload.Length].SequenceEqual(payload));
    }
}
