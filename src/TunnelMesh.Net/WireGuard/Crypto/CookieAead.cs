using NSec.Cryptography;

namespace TunnelMesh.Net.WireGuard.Crypto;

/// <summary>
/// The whitepaper's XAEAD for cookie replies: XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) through
/// NSec (libsodium's <c>crypto_aead_xchacha20poly1305_ietf</c>). Output is ciphertext || 16-byte tag.
/// </summary>
/// <remarks>
/// The key is imported for each call and disposed at once: cookie replies are sent only under load
/// and received rarely, and the key (a hash of a public key) is no long-term secret.
/// </remarks>
internal static class CookieAead
{
    /// <summary>Key size.</summary>
    public const int KeySize = 32;

    /// <summary>Nonce size.</summary>
    public const int NonceSize = 24;

    /// <summary>Tag size.</summary>
    public const int TagSize = 16;

    private static XChaCha20Poly1305 Algorithm => AeadAlgorithm.XChaCha20Poly1305;

    /// <summary>Encrypts <paramref name="plaintext"/> into <paramref name="output"/> (plaintext length + 16: ciphertext then tag).</summary>
    public static void Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData, Span<byte> output)
    {
        using var k = Import(key, nonce);
        Algorithm.Encrypt(k, nonce, associatedData, plaintext, output);
    }

    /// <summary>Decrypts and authenticates <paramref name="input"/> (ciphertext then tag); false when the tag is wrong.</summary>
    public static bool TryOpen(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> input, ReadOnlySpan<byte> associatedData, Span<byte> plaintext)
    {
        using var k = Import(key, nonce);
        return Algorithm.Decrypt(k, nonce, associatedData, input, plaintext);
    }

    private static Key Import(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce)
    {
        if (key.Length != KeySize || nonce.Length != NonceSize)
        {
            throw new ArgumentException("XChaCha20-Poly1305 takes a 32-byte key and a 24-byte nonce.");
        }

        return Key.Import(Algorithm, key, KeyBlobFormat.RawSymmetricKey); // default parameters: not exportable
    }
}
