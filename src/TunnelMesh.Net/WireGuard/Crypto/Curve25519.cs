using System.Security.Cryptography;

namespace TunnelMesh.Net.WireGuard.Crypto;

/// <summary>
/// DH and DH-Generate of the whitepaper: X25519 (RFC 7748), libsodium's
/// <c>crypto_scalarmult_curve25519</c> (the library NSec.Cryptography ships), on spans. Private keys
/// and shared secrets live only in the caller's buffers, which the caller zeroes when they are spent
/// (as wireguard-go and the kernel do); nothing here allocates.
/// </summary>
internal static class Curve25519
{
    /// <summary>Size of keys and shared secrets in bytes.</summary>
    public const int KeySize = 32;

    /// <summary>DH-Generate: a fresh private key (clamped, as <c>wg genkey</c> makes them) and its public key.</summary>
    public static void Generate(Span<byte> privateKey, Span<byte> publicKey)
    {
        GenerateRawPrivateKey(privateKey);
        DerivePublicKey(privateKey, publicKey);
    }

    /// <summary>
    /// DH(private, public) into <paramref name="sharedSecret"/>. Returns false (and leaves zeros) when the
    /// result is all zero, i.e. the public key is of small order; WireGuard rejects those. The most
    /// significant bit of the public key is ignored, as RFC 7748 §5 asks.
    /// </summary>
    public static bool TryAgree(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> sharedSecret)
    {
        CheckSize(privateKey.Length, nameof(privateKey));
        CheckSize(publicKey.Length, nameof(publicKey));
        CheckSize(sharedSecret.Length, nameof(sharedSecret));

        // libsodium refuses an all-zero result itself (-1); the second test costs nothing and keeps
        // the rule here whatever the library does.
        if (Sodium.ScalarMult(sharedSecret, privateKey, publicKey) != 0 || IsZero(sharedSecret))
        {
            sharedSecret.Clear();
            return false;
        }

        return true;
    }

    /// <summary>Derives the 32-byte public key of a private key.</summary>
    public static void DerivePublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey)
    {
        CheckSize(privateKey.Length, nameof(privateKey));
        CheckSize(publicKey.Length, nameof(publicKey));
        if (Sodium.ScalarMultBase(publicKey, privateKey) != 0)
        {
            throw new CryptographicException("X25519 public key derivation failed.");
        }
    }

    /// <summary>A fresh private key from libsodium's generator, clamped as <c>wg genkey</c> does.</summary>
    public static void GenerateRawPrivateKey(Span<byte> privateKey)
    {
        CheckSize(privateKey.Length, nameof(privateKey));
        Sodium.RandomBytes(privateKey);

        // Clamping does not change the public key (X25519 clamps anyway); it makes the stored form
        // identical to what 'wg genkey' writes.
        privateKey[0] &= 248;
        privateKey[31] = (byte)((privateKey[31] & 127) | 64);
    }

    /// <summary>Constant-time test for all zero bytes.</summary>
    public static bool IsZero(ReadOnlySpan<byte> bytes)
    {
        int acc = 0;
        foreach (byte b in bytes)
        {
            acc |= b;
        }

        return acc == 0;
    }

    private static void CheckSize(int length, string name)
    {
        if (length != KeySize)
        {
            throw new ArgumentException($"X25519 keys and shared secrets are {KeySize} bytes, not {length}.", name);
        }
    }
}
