using System.Buffers.Binary;
using System.Security.Cryptography;
using TunnelMesh.Net.Wire;
using TunnelMesh.Net.WireGuard.Crypto;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake state for one peer, exactly as the WireGuard
/// whitepaper §5.4.2–5.4.5 describes it. Not thread-safe: the device serialises calls per peer.
/// </summary>
/// <remarks>
/// The initial chaining key and hash are computed once per process; the static-static DH and the
/// initiator's starting hash once per peer. A failed, replayed or stale message never changes the
/// state: every step works on copies and commits only when the whole message has verified.
/// Secrets are wiped as soon as they are spent: DH results, message keys and working copies of the
/// chaining key on the stack at the end of each step; the ephemeral private key (a buffer of this
/// object, or the stack for the responder) is zeroed once both its DHs are done; the hash,
/// chaining key and remote ephemeral when the keypair is derived or the handshake is cleared; the
/// static-static DH and the preshared key when the peer is removed (<see cref="Dispose"/>).
/// </remarks>
internal sealed class NoiseHandshake : IDisposable
{
    private const int KeySize = Curve25519.KeySize;
    private const int HashSize = Blake2s.MaxOutputSize;

    private static readonly byte[] s_initialChainingKey = ComputeInitialChainingKey();
    private static readonly byte[] s_initialHash = ComputeInitialHash();

    private readonly LocalIdentity _local;
    private readonly byte[] _presharedKey = new byte[KeySize];
    private readonly byte[] _staticStatic = new byte[KeySize];
    private readonly byte[] _initiatorInitialHash = new byte[HashSize];

    // Secrets of the handshake in progress; zeroed by Clear and DeriveKeypair.
    private readonly byte[] _hash = new byte[HashSize];
    private readonly byte[] _chainingKey = new byte[HashSize];
    private readonly byte[] _remoteEphemeral = new byte[KeySize];
    private readonly byte[] _localEphemeral = new byte[KeySize];
    private bool _hasLocalEphemeral;
    private bool _disposed;

    private Tai64N _latestTimestamp;
    private bool _hasTimestamp;

    /// <summary>Prepares a handshake with <paramref name="remoteStatic"/>, with an optional 32-byte preshared key.</summary>
    /// <exception cref="ArgumentException">The preshared key is not 0 or 32 bytes, or the remote key is of small order.</exception>
    public NoiseHandshake(LocalIdentity local, NodePublicKey remoteStatic, ReadOnlySpan<byte> presharedKey)
    {
        ArgumentNullException.ThrowIfNull(local);
        if (!presharedKey.IsEmpty && presharedKey.Length != KeySize)
        {
            throw new ArgumentException("A preshared key is 32 bytes (or absent).", nameof(presharedKey));
        }

        if (!remoteStatic.IsSet)
        {
            throw new ArgumentException("The remote static key is not set.", nameof(remoteStatic));
        }

        _local = local;
        RemoteStatic = remoteStatic;
        presharedKey.CopyTo(_presharedKey);
        if (!Curve25519.TryAgree(local.StaticKey, remoteStatic.Bytes, _staticStatic))
        {
            throw new ArgumentException("The remote static key is of small order.", nameof(remoteStatic));
        }

        Blake2s.Hash(s_initialHash, remoteStatic.Bytes, _initiatorInitialHash);
    }

    /// <summary>HASH(HASH(CONSTRUCTION) || IDENTIFIER): the hash every handshake starts from.</summary>
    internal static ReadOnlySpan<byte> InitialHash => s_initialHash;

    /// <summary>HASH(CONSTRUCTION): the chaining key every handshake starts from.</summary>
    internal static ReadOnlySpan<byte> InitialChainingKey => s_initialChainingKey;

    /// <summary>The peer's static public key.</summary>
    public NodePublicKey RemoteStatic { get; }

    /// <summary>Where the handshake is.</summary>
    public HandshakeState State { get; private set; }

    /// <summary>Our index for this handshake (sender index of the message we created).</summary>
    public uint LocalIndex { get; private set; }

    /// <summary>The peer's index for this handshake (sender index of the message we consumed).</summary>
    public uint RemoteIndex { get; private set; }

    /// <summary>The newest initiation timestamp accepted from this peer (default when none).</summary>
    public Tai64N LatestTimestamp => _latestTimestamp;

    /// <summary>
    /// Whether no secret of a handshake in progress is held: hash, chaining key and remote ephemeral
    /// all zero and no ephemeral private key. True after <see cref="DeriveKeypair"/> and <see cref="Clear"/>.
    /// </summary>
    internal bool HoldsNoHandshakeSecrets =>
        !_hasLocalEphemeral && Curve25519.IsZero(_localEphemeral) && Curve25519.IsZero(_hash) && Curve25519.IsZero(_chainingKey) && Curve25519.IsZero(_remoteEphemeral);

    /// <summary>Whether <see cref="Dispose"/> was called (the peer is gone).</summary>
    internal bool IsDisposed => _disposed;

    /// <summary>Whether the peer-lifetime secrets (static-static DH, preshared key) are zero too: true after <see cref="Dispose"/>.</summary>
    internal bool HoldsNoSecrets => HoldsNoHandshakeSecrets && Curve25519.IsZero(_staticStatic) && Curve25519.IsZero(_presharedKey);

    /// <summary>
    /// Initiator: writes a 148-byte initiation (type, reserved, sender, ephemeral, encrypted static,
    /// encrypted timestamp) into <paramref name="message"/>, leaving mac1 and mac2 zero for the
    /// <see cref="CookieGenerator"/>. Any handshake in progress is replaced.
    /// </summary>
    public void CreateInitiation(Span<byte> message, uint localIndex, Tai64N now)
    {
        if (message.Length != WireGuardSpec.InitiationSize)
        {
            throw new ArgumentException($"An initiation is {WireGuardSpec.InitiationSize} bytes.", nameof(message));
        }

        Span<byte> h = stackalloc byte[HashSize];
        Span<byte> ck = stackalloc byte[HashSize];
        Span<byte> k = stackalloc byte[KeySize];
        Span<byte> ss = stackalloc byte[KeySize];
        Span<byte> timestamp = stackalloc byte[Tai64N.Size];
        try
        {
            _initiatorInitialHash.CopyTo(h);
            s_initialChainingKey.CopyTo(ck);

            message.Clear();
            WireGuardSpec.WriteType(message, WireGuardSpec.TypeInitiation);
            BinaryPrimitives.WriteUInt32LittleEndian(message[WireGuardSpec.Initiation.Sender..], localIndex);

            ObjectDisposedException.ThrowIf(_disposed, this);
            var ephemeral = message.Slice(WireGuardSpec.Initiation.Ephemeral, KeySize);
            Curve25519.Generate(_localEphemeral, ephemeral);
            _hasLocalEphemeral = true;
            NoiseKdf.Derive(ck, ephemeral, ck);
            MixHash(h, ephemeral);

            if (!Curve25519.TryAgree(_localEphemeral, RemoteStatic.Bytes, ss))
            {
                throw new InvalidOperationException("DH with the remote static key gave zero."); // excluded by the constructor
            }

            NoiseKdf.Derive(ck, ss, ck, k);
            var encryptedStatic = message.Slice(WireGuardSpec.Initiation.EncryptedStatic, WireGuardSpec.Initiation.EncryptedStaticSize);
            NoiseAead.Seal(k, 0, _local.PublicKey.Bytes, h, encryptedStatic);
            MixHash(h, encryptedStatic);

            NoiseKdf.Derive(ck, _staticStatic, ck, k);
            now.WriteTo(timestamp);
            var encryptedTimestamp = message.Slice(WireGuardSpec.Initiation.EncryptedTimestamp, WireGuardSpec.Initiation.EncryptedTimestampSize);
            NoiseAead.Seal(k, 0, timestamp, h, encryptedTimestamp);
            MixHash(h, encryptedTimestamp);

            h.CopyTo(_hash);
            ck.CopyTo(_chainingKey);
            _remoteEphemeral.AsSpan().Clear();
            LocalIndex = localIndex;
            RemoteIndex = 0;
            State = HandshakeState.InitiationCreated;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(ck);
            CryptographicOperations.ZeroMemory(k);
            CryptographicOperations.ZeroMemory(ss);
        }
    }

    /// <summary>
    /// Responder: verifies an initiation (its mac1 already checked by the caller), finds the peer by the
    /// decrypted static key through <paramref name="findPeer"/>, rejects a timestamp not newer than the
    /// newest accepted from that peer, and only then moves that peer's handshake to
    /// <see cref="HandshakeState.InitiationConsumed"/>. <paramref name="handshake"/> is set only on
    /// <see cref="HandshakeResult.Ok"/>.
    /// </summary>
    public static HandshakeResult ConsumeInitiation(LocalIdentity local, ReadOnlySpan<byte> message, Func<NodePublicKey, NoiseHandshake?> findPeer, out NoiseHandshake? handshake)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(findPeer);
        handshake = null;
        if (!InitiationMessage.TryCreate(message, out var initiation))
        {
            return HandshakeResult.Malformed;
        }

        Span<byte> h = stackalloc byte[HashSize];
        Span<byte> ck = stackalloc byte[HashSize];
        Span<byte> k = stackalloc byte[KeySize];
        Span<byte> ss = stackalloc byte[KeySize];
        Span<byte> peerStatic = stackalloc byte[KeySize];
        Span<byte> timestampBytes = stackalloc byte[Tai64N.Size];
        try
        {
            local.ResponderInitialHash.CopyTo(h);
            s_initialChainingKey.CopyTo(ck);

            var ephemeral = initiation.Ephemeral;
            NoiseKdf.Derive(ck, ephemeral, ck);
            MixHash(h, ephemeral);

            if (!Curve25519.TryAgree(local.StaticKey, ephemeral, ss))
            {
                return HandshakeResult.Malformed;
            }

            NoiseKdf.Derive(ck, ss, ck, k);
            if (!NoiseAead.TryOpen(k, 0, initiation.EncryptedStatic, h, peerStatic))
            {
                return HandshakeResult.DecryptionFailed;
            }

            MixHash(h, initiation.EncryptedStatic);

            var peer = findPeer(NodePublicKey.FromBytes(peerStatic));
            if (peer is null)
            {
                return HandshakeResult.UnknownPeer;
            }

            NoiseKdf.Derive(ck, peer._staticStatic, ck, k);
            if (!NoiseAead.TryOpen(k, 0, initiation.EncryptedTimestamp, h, timestampBytes))
            {
                return HandshakeResult.DecryptionFailed;
            }

            MixHash(h, initiation.EncryptedTimestamp);

            var timestamp = Tai64N.Read(timestampBytes);
            if (peer._hasTimestamp && timestamp <= peer._latestTimestamp)
            {
                return HandshakeResult.Replay;
            }

            // Everything verified: commit to the peer's state.
            h.CopyTo(peer._hash);
            ck.CopyTo(peer._chainingKey);
            ephemeral.CopyTo(peer._remoteEphemeral);
            peer.ForgetLocalEphemeral();
            peer._latestTimestamp = timestamp;
            peer._hasTimestamp = true;
            peer.RemoteIndex = initiation.Sender;
            peer.LocalIndex = 0;
            peer.State = HandshakeState.InitiationConsumed;
            handshake = peer;
            return HandshakeResult.Ok;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(ck);
            CryptographicOperations.ZeroMemory(k);
            CryptographicOperations.ZeroMemory(ss);
        }
    }

    /// <summary>
    /// Responder: writes a 92-byte response (mac1 and mac2 left zero) after a consumed initiation.
    /// </summary>
    /// <exception cref="InvalidOperationException">No initiation was consumed.</exception>
    public void CreateResponse(Span<byte> message, uint localIndex)
    {
        if (message.Length != WireGuardSpec.ResponseSize)
        {
            throw new ArgumentException($"A response is {WireGuardSpec.ResponseSize} bytes.", nameof(message));
        }

        if (State != HandshakeState.InitiationConsumed)
        {
            throw new InvalidOperationException($"A response needs a consumed initiation; the state is {State}.");
        }

        Span<byte> ss = stackalloc byte[KeySize];
        Span<byte> tau = stackalloc byte[HashSize];
        Span<byte> k = stackalloc byte[KeySize];
        Span<byte> localEphemeral = stackalloc byte[KeySize];
        try
        {
            message.Clear();
            WireGuardSpec.WriteType(message, WireGuardSpec.TypeResponse);
            BinaryPrimitives.WriteUInt32LittleEndian(message[WireGuardSpec.Response.Sender..], localIndex);
            BinaryPrimitives.WriteUInt32LittleEndian(message[WireGuardSpec.Response.Receiver..], RemoteIndex);

            var ephemeral = message.Slice(WireGuardSpec.Response.Ephemeral, KeySize);
            Curve25519.Generate(localEphemeral, ephemeral);
            NoiseKdf.Derive(_chainingKey, ephemeral, _chainingKey);
            MixHash(_hash, ephemeral);

            // Both remote keys were checked for small order when the initiation was consumed.
            Curve25519.TryAgree(localEphemeral, _remoteEphemeral, ss);
            NoiseKdf.Derive(_chainingKey, ss, _chainingKey);
            Curve25519.TryAgree(localEphemeral, RemoteStatic.Bytes, ss);
            CryptographicOperations.ZeroMemory(localEphemeral);
            NoiseKdf.Derive(_chainingKey, ss, _chainingKey);

            NoiseKdf.Derive(_chainingKey, _presharedKey, _chainingKey, tau, k);
            MixHash(_hash, tau);

            var encryptedNothing = message.Slice(WireGuardSpec.Response.EncryptedNothing, WireGuardSpec.TagSize);
            NoiseAead.Seal(k, 0, default, _hash, encryptedNothing);
            MixHash(_hash, encryptedNothing);

            LocalIndex = localIndex;
            State = HandshakeState.ResponseCreated;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(ss);
            CryptographicOperations.ZeroMemory(tau);
            CryptographicOperations.ZeroMemory(k);
            CryptographicOperations.ZeroMemory(localEphemeral);
        }
    }

    /// <summary>
    /// Initiator: verifies a response to our initiation. The caller has matched the receiver index to
    /// <see cref="LocalIndex"/> (it is checked again here). Nothing changes unless it verifies.
    /// </summary>
    public HandshakeResult ConsumeResponse(ReadOnlySpan<byte> message)
    {
        if (!ResponseMessage.TryCreate(message, out var response))
        {
            return HandshakeResult.Malformed;
        }

        if (State != HandshakeState.InitiationCreated || response.Receiver != LocalIndex)
        {
            return HandshakeResult.WrongState;
        }

        Span<byte> h = stackalloc byte[HashSize];
        Span<byte> ck = stackalloc byte[HashSize];
        Span<byte> ss = stackalloc byte[KeySize];
        Span<byte> tau = stackalloc byte[HashSize];
        Span<byte> k = stackalloc byte[KeySize];
        try
        {
            _hash.CopyTo(h);
            _chainingKey.CopyTo(ck);

            var ephemeral = response.Ephemeral;
            NoiseKdf.Derive(ck, ephemeral, ck);
            MixHash(h, ephemeral);

            if (!_hasLocalEphemeral || !Curve25519.TryAgree(_localEphemeral, ephemeral, ss))
            {
                return HandshakeResult.Malformed;
            }

            NoiseKdf.Derive(ck, ss, ck);
            if (!Curve25519.TryAgree(_local.StaticKey, ephemeral, ss))
            {
                return HandshakeResult.Malformed;
            }

            NoiseKdf.Derive(ck, ss, ck);
            NoiseKdf.Derive(ck, _presharedKey, ck, tau, k);
            MixHash(h, tau);

            if (!NoiseAead.TryOpen(k, 0, response.EncryptedNothing, h, default))
            {
                return HandshakeResult.DecryptionFailed;
            }

            MixHash(h, response.EncryptedNothing);

            h.CopyTo(_hash);
            ck.CopyTo(_chainingKey);
            ephemeral.CopyTo(_remoteEphemeral);
            ForgetLocalEphemeral();
            RemoteIndex = response.Sender;
            State = HandshakeState.ResponseConsumed;
            return HandshakeResult.Ok;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(h);
            CryptographicOperations.ZeroMemory(ck);
            CryptographicOperations.ZeroMemory(ss);
            CryptographicOperations.ZeroMemory(tau);
            CryptographicOperations.ZeroMemory(k);
        }
    }

    /// <summary>
    /// Derives the transport keypair of a completed handshake (responder after
    /// <see cref="CreateResponse"/>, initiator after <see cref="ConsumeResponse"/>), then zeroes the
    /// handshake's secrets and returns to <see cref="HandshakeState.Zeroed"/>.
    /// </summary>
    /// <param name="createdTimestamp">A <see cref="TimeProvider.GetTimestamp"/> value, kept on the keypair for its timers.</param>
    /// <exception cref="InvalidOperationException">The handshake is not complete.</exception>
    public Keypair DeriveKeypair(long createdTimestamp)
    {
        bool isInitiator = State switch
        {
            HandshakeState.ResponseConsumed => true,
            HandshakeState.ResponseCreated => false,
            _ => throw new InvalidOperationException($"No completed handshake to derive keys from; the state is {State}."),
        };

        Span<byte> first = stackalloc byte[KeySize];
        Span<byte> second = stackalloc byte[KeySize];
        try
        {
            NoiseKdf.Derive(_chainingKey, default, first, second);

            // Initiator: (Tsend, Trecv) = KDF2(C, ε); responder: (Trecv, Tsend) = KDF2(C, ε).
            var keypair = isInitiator
                ? new Keypair(first, second, LocalIndex, RemoteIndex, isInitiator: true, createdTimestamp)
                : new Keypair(second, first, LocalIndex, RemoteIndex, isInitiator: false, createdTimestamp);
            Clear();
            return keypair;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(first);
            CryptographicOperations.ZeroMemory(second);
        }
    }

    /// <summary>
    /// Zeroes the handshake in progress (hash, chaining key, ephemerals) and returns to
    /// <see cref="HandshakeState.Zeroed"/>. The newest accepted timestamp is kept: it guards against
    /// replayed initiations for the peer's whole life.
    /// </summary>
    public void Clear()
    {
        CryptographicOperations.ZeroMemory(_hash);
        CryptographicOperations.ZeroMemory(_chainingKey);
        CryptographicOperations.ZeroMemory(_remoteEphemeral);
        ForgetLocalEphemeral();
        State = HandshakeState.Zeroed;
    }

    /// <summary>
    /// Clears the handshake and also zeroes the peer-lifetime secrets (the static-static DH and the
    /// preshared key): the peer is gone. No new initiation can be created afterwards. Safe to call twice.
    /// </summary>
    public void Dispose()
    {
        Clear();
        CryptographicOperations.ZeroMemory(_staticStatic);
        CryptographicOperations.ZeroMemory(_presharedKey);
        _disposed = true;
    }

    private void ForgetLocalEphemeral()
    {
        CryptographicOperations.ZeroMemory(_localEphemeral);
        _hasLocalEphemeral = false;
    }

    private static void MixHash(Span<byte> hash, ReadOnlySpan<byte> data) => Blake2s.Hash(hash, data, hash);

    private static byte[] ComputeInitialChainingKey()
    {
        var ck = new byte[HashSize];
        Blake2s.Hash(ProtocolConstants.Construction, ck);
        return ck;
    }

    private static byte[] ComputeInitialHash()
    {
        var h = new byte[HashSize];
        Blake2s.Hash(ComputeInitialChainingKey(), ProtocolConstants.Identifier, h);
        return h;
    }
}
