namespace TunnelMesh.Net.WireGuard;

/// <summary>Where a <see cref="NoiseHandshake"/> is in the Noise_IKpsk2 exchange.</summary>
internal enum HandshakeState
{
    /// <summary>No handshake in progress (secrets zeroed).</summary>
    Zeroed,

    /// <summary>Initiator: an initiation was created and a response is awaited.</summary>
    InitiationCreated,

    /// <summary>Responder: an initiation was accepted and a response can be created.</summary>
    InitiationConsumed,

    /// <summary>Responder: a response was created; the keypair can be derived.</summary>
    ResponseCreated,

    /// <summary>Initiator: the response was accepted; the keypair can be derived.</summary>
    ResponseConsumed,
}
