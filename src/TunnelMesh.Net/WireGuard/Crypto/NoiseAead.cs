using System.Buffers.Binary;
using System.Security.Cryptography;

namespace TunnelMesh.Net.WireGuard.Crypto;

/// <summary>
/// The whitepaper's AEAD(key, counter, plain, auth) for handshake messages: ChaCha20-Poly1305 (RFC 8439)
/// with nonce = 4 zero bytes || 64-bit little-endian counter. Output is ciphertext || 16-byte tag.
/// </summary>
internal static class NoiseAead
{
    /// <summary>Tag size.</summary>
    public const int TagSize = 16;

    /// <summary>Nonce size.</summary>
    public const int NonceSize = 12;

    /// <summary>Writes the 12-byte nonce for <paramref name="counter"/>.</summary>
    public static void WriteNonce(Span<byte> nonce, ulong counter)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(nonce, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(nonce[4..], counter);
    }

    /// <summary>Encrypts into <paramref name="output"/> (plaintext length + 16).</summary>
    public static void Seal(ReadOnlySpan<byte> key, ulong counter, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData, Span<byte> output)
    {
        Span<byte> nonce = stackalloc byte[NonceSize];
        WriteNonce(nonce, counter);
        using var aead = new ChaCha20Poly1305(key);
        aead.Encrypt(nonce, plaintext, output[..plaintext.Length], output.Slice(plaintext.Length, TagSize), associatedData);
    }

    /// <summary>Decrypts <paramref name="input"/> (ciphertext || tag) into <paramref name="plaintext"/>; false when it does not authenticate.</summary>
    public static bool TryOpen(ReadOnlySpan<byte> key, ulong counter, ReadOnlySpan<byte> input, ReadOnlySpan<byte> associatedData, Span<byte> plaintext)
    {
        Span<byte> nonce = stackalloc byte[NonceSize];
        WriteNonce(nonce, counter);
        int length = input.Length - TagSize;
        using var aead = new ChaCha20Poly1305(key);
        try
        {
            aead.Decrypt(nonce, input[..length], input[length..], plaintext[..length], associatedData);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
    }
}
