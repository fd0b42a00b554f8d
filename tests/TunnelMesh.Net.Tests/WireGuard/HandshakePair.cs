using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.WireGuardTests;

/// <summary>Two identities that know each other, with a handshake object on each side, in memory.</summary>
internal sealed class HandshakePair
{
    public HandshakePair(byte[]? initiatorPsk = null, byte[]? responderPsk = null)
    {
        Initiator = new LocalIdentity(NodePrivateKey.Generate());
        Responder = new LocalIdentity(NodePrivateKey.Generate());
        InitiatorSide = new NoiseHandshake(Initiator, Responder.PublicKey, initiatorPsk ?? []);
        ResponderSide = new NoiseHandshake(Responder, Initiator.PublicKey, responderPsk ?? []);
    }

    public LocalIdentity Initiator { get; }

    public LocalIdentity Responder { get; }

    /// <summary>The initiator's handshake state for the responder.</summary>
    public NoiseHandshake InitiatorSide { get; }

    /// <summary>The responder's handshake state for the initiator.</summary>
    public NoiseHandshake ResponderSide { get; }

    public NoiseHandshake? FindOnResponder(NodePublicKey key) => key == Initiator.PublicKey ? ResponderSide : null;

    public static Tai64N Time(int second) => Tai64N.FromDateTimeOffset(new DateTimeOffset(2026, 1, 1, 0, 0, second, TimeSpan.Zero));

    public byte[] Initiation(int second = 0, uint index = 0x1111)
    {
        var message = new byte[WireGuardSpec.InitiationSize];
        InitiatorSide.CreateInitiation(message, index, Time(second));
        return message;
    }

    /// <summary>Runs a whole handshake and returns (initiator keypair, responder keypair).</summary>
    public (Keypair Initiator, Keypair Responder) Complete(int second = 0)
    {
        var initiation = Initiation(second);
        var result = NoiseHandshake.ConsumeInitiation(Responder, initiation, FindOnResponder, out var found);
        if (result != HandshakeResult.Ok || found != ResponderSide)
        {
            throw new InvalidOperationException($"Initiation: {result}");
        }

        var response = new byte[WireGuardSpec.ResponseSize];
        ResponderSide.CreateResponse(response, 0x2222);
        var responderKeypair = ResponderSide.DeriveKeypair(createdTimestamp: 1);
        result = InitiatorSide.ConsumeResponse(response);
        if (result != HandshakeResult.Ok)
        {
            throw new InvalidOperationException($"Response: {result}");
        }

        return (InitiatorSide.DeriveKeypair(createdTimestamp: 2), responderKeypair);
    }

    public static PacketBuffer Packet(ReadOnlySpan<byte> payload)
    {
        var buffer = new PacketBuffer(pool: null);
        buffer.Reset();
        payload.CopyTo(buffer.Available);
        buffer.Length = payload.Length;
        return buffer;
    }
}
