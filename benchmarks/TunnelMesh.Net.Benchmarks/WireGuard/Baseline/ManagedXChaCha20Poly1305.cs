using System.Security.Cryptography;

namespace TunnelMesh.Net.Benchmarks.WireGuard.Baseline;

/// <summary>
/// BENCHMARK BASELINE ONLY (TunnelMesh.Net before issue 10): our own construction.
/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): HChaCha20 derives a subkey from the key and the first
/// 16 nonce bytes; ChaCha20-Poly1305 (BCL) then runs with nonce = 4 zero bytes || the last 8 nonce bytes.
/// WireGuard uses it only for cookie replies.
/// </summary>
internal static class ManagedXChaCha20Poly1305
{
    /// <summary>Key size.</summary>
    public const int KeySize = 32;

    /// <summary>Nonce size.</summary>
    public const int NonceSize = 24;

    /// <summary>Tag size.</summary>
    public const int TagSize = 16;

    /// <summary>Encrypts <paramref name="plaintext"/> into <paramref name="ciphertext"/> (same length) and writes the tag.</summary>
    public static void Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag, ReadOnlySpan<byte> associatedData)
    {
        Span<byte> subkey = stackalloc byte[KeySize];
        Span<byte> innerNonce = stackalloc byte[12];
        Prepare(key, nonce, subkey, innerNonce);
        try
        {
            using var aead = new ChaCha20Poly1305(subkey);
            aead.Encrypt(innerNonce, plaintext, ciphertext, tag, associatedData);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(subkey);
        }
    }

    /// <summary>Decrypts and authenticates; false (and <paramref name="plaintext"/> cleared) when the tag is wrong.</summary>
    public static bool TryOpen(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        Span<byte> subkey = stackalloc byte[KeySize];
        Span<byte> innerNonce = stackalloc byte[12];
        Prepare(key, nonce, subkey, innerNonce);
        try
        {
            using var aead = new ChaCha20Poly1305(subkey);
            aead.Decrypt(innerNonce, ciphertext, tag, plaintext, associatedData);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(subkey);
        }
    }

    private static void Prepare(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, Span<byte> subkey, Span<byte> innerNonce)
    {
        if (key.Length != KeySize || nonce.Length != NonceSize)
        {
            throw new ArgumentException("XChaCha20-Poly1305 takes a 32-byte key and a 24-byte nonce.");
        }

        HChaCha20.DeriveSubkey(key, nonce[..16], subkey);
        innerNonce[..4].Clear();
        nonce[16..].CopyTo(innerNonce[4..]);
    }
}
