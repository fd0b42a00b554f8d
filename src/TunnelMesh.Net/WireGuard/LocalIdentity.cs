using TunnelMesh.Net.WireGuard.Crypto;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// The local static identity, with the values derived from it precomputed: the mac1 key
/// HASH("mac1----" || Spub), the cookie key HASH("cookie--" || Spub), and the responder's initial
/// handshake hash HASH(HASH(HASH(CONSTRUCTION) || IDENTIFIER) || Spub). The private key stays in the
/// <see cref="NodePrivateKey"/> it came from (the application's object).
/// </summary>
internal sealed class LocalIdentity : IDisposable
{
    private readonly byte[] _mac1Key = new byte[Blake2s.MaxOutputSize];
    private readonly byte[] _cookieKey = new byte[Blake2s.MaxOutputSize];
    private readonly byte[] _responderInitialHash = new byte[Blake2s.MaxOutputSize];

    /// <summary>Derives everything from <paramref name="privateKey"/>.</summary>
    public LocalIdentity(NodePrivateKey privateKey)
    {
        ArgumentNullException.ThrowIfNull(privateKey);
        PrivateKey = privateKey;
        PublicKey = privateKey.PublicKey;
        Blake2s.Hash(ProtocolConstants.LabelMac1, PublicKey.Bytes, _mac1Key);
        Blake2s.Hash(ProtocolConstants.LabelCookie, PublicKey.Bytes, _cookieKey);
        Blake2s.Hash(NoiseHandshake.InitialHash, PublicKey.Bytes, _responderInitialHash);
        CookieAead = new CookieAead(_cookieKey);
    }

    /// <summary>The static private key.</summary>
    public NodePrivateKey PrivateKey { get; }

    /// <summary>XChaCha20-Poly1305 under <see cref="CookieKey"/>, for the cookie replies we send.</summary>
    public CookieAead CookieAead { get; }

    /// <summary>The static private key's 32 bytes, for DH.</summary>
    public ReadOnlySpan<byte> StaticKey => PrivateKey.Bytes;

    /// <summary>The static public key.</summary>
    public NodePublicKey PublicKey { get; }

    /// <summary>HASH("mac1----" || Spub): the key peers use for mac1 of messages to us.</summary>
    public ReadOnlySpan<byte> Mac1Key => _mac1Key;

    /// <summary>HASH("cookie--" || Spub): the key our cookie replies are encrypted with.</summary>
    public ReadOnlySpan<byte> CookieKey => _cookieKey;

    /// <summary>The handshake hash after mixing in our own static key (the responder's starting point).</summary>
    internal ReadOnlySpan<byte> ResponderInitialHash => _responderInitialHash;

    /// <summary>Disposes <see cref="CookieAead"/> (libsodium wipes the cookie key it holds). Safe to call twice.</summary>
    public void Dispose()
    {
        CookieAead.Dispose();
    }
}
