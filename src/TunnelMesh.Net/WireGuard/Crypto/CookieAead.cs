using NSec.Cryptography;

namespace TunnelMesh.Net.WireGuard.Crypto;

/// <summary>
/// The whitepaper's XAEAD for cookie replies under one key: XChaCha20-Poly1305
/// (draft-irtf-cfrg-xchacha) through NSec (libsodium's <c>crypto_aead_xchacha20poly1305_ietf</c>).
/// Sealed output is ciphertext || 16-byte tag.
/// </summary>
/// <remarks>
/// The key (HASH("cookie--" || Spub), derived from a public key) is imported into NSec once, because
/// an import costs a libsodium guarded allocation, and cookie replies are sent precisely when the
/// device is under load. Thread-safe: libsodium's AEAD keeps no state between calls.
/// </remarks>
internal sealed class CookieAead : IDisposable
{
    /// <summary>Key size.</summary>
    public const int KeySize = 32;

    /// <summary>Nonce size.</summary>
    public const int NonceSize = 24;

    /// <summary>Tag size.</summary>
    public const int TagSize = 16;

    private readonly Key _key;

    /// <summary>Imports the 32-byte key (not exportable again).</summary>
    public CookieAead(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeySize)
        {
            throw new ArgumentException("XChaCha20-Poly1305 takes a 32-byte key.", nameof(key));
        }

        _key = Key.Import(Algorithm, key, KeyBlobFormat.RawSymmetricKey); // default parameters: not exportable
    }

    private static XChaCha20Poly1305 Algorithm => AeadAlgorithm.XChaCha20Poly1305;

    /// <summary>Encrypts <paramref name="plaintext"/> into <paramref name="output"/> (plaintext length + 16: ciphertext then tag).</summary>
    public void Seal(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData, Span<byte> output)
    {
        CheckNonce(nonce);
        Algorithm.Encrypt(_key, nonce, associatedData, plaintext, output);
    }

    /// <summary>Decrypts and authenticates <paramref name="input"/> (ciphertext then tag); false when the tag is wrong.</summary>
    public bool TryOpen(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> input, ReadOnlySpan<byte> associatedData, Span<byte> plaintext)
    {
        CheckNonce(nonce);
        return Algorithm.Decrypt(_key, nonce, associatedData, input, plaintext);
    }

    /// <summary>Disposes the NSec key. Safe to call twice.</summary>
    public void Dispose() => _key.Dispose();

    private static void CheckNonce(ReadOnlySpan<byte> nonce)
    {
        if (nonce.Length != NonceSize)
        {
            throw new ArgumentException("XChaCha20-Poly1305 takes a 24-byte nonce.", nameof(nonce));
        }
    }
}
