// CONTRACT STUBS — to be replaced by the real implementations (each type moves to its own file).
#pragma warning disable CA1067, CA1822, CA1036, CS1591
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.WireGuard;

/// <summary>A TAI64N timestamp (12 bytes: 8 seconds, 4 nanoseconds, big-endian), as in handshake initiations.</summary>
internal readonly struct Tai64N : IComparable<Tai64N>, IEquatable<Tai64N>
{
    public const int Size = 12;
    public static Tai64N FromDateTimeOffset(DateTimeOffset time) => throw new NotImplementedException();
    public static Tai64N Read(ReadOnlySpan<byte> source) => throw new NotImplementedException();
    public void WriteTo(Span<byte> destination) => throw new NotImplementedException();
    public int CompareTo(Tai64N other) => throw new NotImplementedException();
    public bool Equals(Tai64N other) => throw new NotImplementedException();
}

/// <summary>The local static identity, with the values derived from it precomputed.</summary>
internal sealed class LocalIdentity
{
    public LocalIdentity(NodePrivateKey privateKey) => throw new NotImplementedException();
    public NodePrivateKey PrivateKey => throw new NotImplementedException();
    public NodePublicKey PublicKey => throw new NotImplementedException();
}

internal enum HandshakeState { Zeroed, InitiationCreated, InitiationConsumed, ResponseCreated, ResponseConsumed }

internal enum HandshakeResult { Ok, Malformed, DecryptionFailed, UnknownPeer, Replay, WrongState }

/// <summary>Noise_IKpsk2 handshake state for one peer. Not thread-safe: the device serialises calls per peer.</summary>
internal sealed class NoiseHandshake
{
    public NoiseHandshake(LocalIdentity local, NodePublicKey remoteStatic, ReadOnlySpan<byte> presharedKey) => throw new NotImplementedException();
    public NodePublicKey RemoteStatic => throw new NotImplementedException();
    public HandshakeState State => throw new NotImplementedException();
    public uint LocalIndex => throw new NotImplementedException();
    public uint RemoteIndex => throw new NotImplementedException();
    public void CreateInitiation(Span<byte> message, uint localIndex, Tai64N now) => throw new NotImplementedException();
    public static HandshakeResult ConsumeInitiation(LocalIdentity local, ReadOnlySpan<byte> message, Func<NodePublicKey, NoiseHandshake?> findPeer, out NoiseHandshake? handshake) => throw new NotImplementedException();
    public void CreateResponse(Span<byte> message, uint localIndex) => throw new NotImplementedException();
    public HandshakeResult ConsumeResponse(ReadOnlySpan<byte> message) => throw new NotImplementedException();
    public Keypair DeriveKeypair(long createdTimestamp) => throw new NotImplementedException();
    public void Clear() => throw new NotImplementedException();
}

internal enum OpenResult { Ok, DecryptionFailed, Replay, Expired }

/// <summary>One session's transport keys.</summary>
internal sealed class Keypair : IDisposable
{
    public uint LocalIndex => throw new NotImplementedException();
    public uint RemoteIndex => throw new NotImplementedException();
    public bool IsInitiator => throw new NotImplementedException();
    public long CreatedTimestamp => throw new NotImplementedException();
    public ulong SendCounter => throw new NotImplementedException();
    public bool TrySeal(PacketBuffer packet) => throw new NotImplementedException();
    public OpenResult TryOpen(PacketBuffer packet) => throw new NotImplementedException();
    public void Dispose() => throw new NotImplementedException();
}

/// <summary>Responder side of mac1/mac2 and cookie replies, for the local identity.</summary>
internal sealed class CookieChecker
{
    public CookieChecker(LocalIdentity local, TimeProvider time) => throw new NotImplementedException();
    public bool CheckMac1(ReadOnlySpan<byte> message) => throw new NotImplementedException();
    public bool CheckMac2(ReadOnlySpan<byte> message, Endpoint source) => throw new NotImplementedException();
    public void CreateReply(Span<byte> reply, ReadOnlySpan<byte> message, uint receiverIndex, Endpoint source) => throw new NotImplementedException();
}

/// <summary>Sender side of mac1/mac2, for one peer.</summary>
internal sealed class CookieGenerator
{
    public CookieGenerator(NodePublicKey remoteStatic, TimeProvider time) => throw new NotImplementedException();
    public void AddMacs(Span<byte> message) => throw new NotImplementedException();
    public bool ConsumeReply(ReadOnlySpan<byte> reply) => throw new NotImplementedException();
}

