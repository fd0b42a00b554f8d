using System.Security.Cryptography;
using NSec.Cryptography;

namespace TunnelMesh.Net.WireGuard.Crypto;

/// <summary>
/// DH and DH-Generate of the whitepaper: X25519 (RFC 7748) through NSec, that is libsodium's
/// <c>crypto_scalarmult_curve25519</c>. Private keys live in NSec <see cref="Key"/> objects (libsodium
/// guarded memory, wiped when the key is disposed); shared secrets are copied out only into the
/// caller's span, which the caller zeroes.
/// </summary>
internal static class Curve25519
{
    /// <summary>Size of keys and shared secrets in bytes.</summary>
    public const int KeySize = 32;

    private static KeyAgreementAlgorithm Algorithm => KeyAgreementAlgorithm.X25519;

    /// <summary>
    /// Imports a 32-byte private key (clamped or not: X25519 clamps) into an NSec key that cannot be
    /// exported again. The caller disposes it.
    /// </summary>
    public static Key ImportPrivateKey(ReadOnlySpan<byte> privateKey) =>
        Key.Import(Algorithm, privateKey, KeyBlobFormat.RawPrivateKey); // default parameters: not exportable

    /// <summary>
    /// Imports a 32-byte public key. The most significant bit is ignored, as RFC 7748 §5 asks.
    /// Small-order points are accepted here and refused by <see cref="TryAgree(Key, PublicKey, Span{byte})"/>.
    /// </summary>
    public static PublicKey ImportPublicKey(ReadOnlySpan<byte> publicKey) =>
        PublicKey.Import(Algorithm, publicKey, KeyBlobFormat.RawPublicKey);

    /// <summary>DH-Generate: a fresh private key (the caller disposes it) with its public key written to <paramref name="publicKey"/>.</summary>
    public static Key Generate(Span<byte> publicKey)
    {
        var key = Key.Create(Algorithm); // default parameters: not exportable
        WritePublicKey(key, publicKey);
        return key;
    }

    /// <summary>Writes the 32-byte public key of <paramref name="privateKey"/>.</summary>
    public static void WritePublicKey(Key privateKey, Span<byte> publicKey)
    {
        ArgumentNullException.ThrowIfNull(privateKey);
        if (!privateKey.PublicKey.TryExport(KeyBlobFormat.RawPublicKey, publicKey, out int written) || written != KeySize)
        {
            throw new ArgumentException("A public key is 32 bytes.", nameof(publicKey));
        }
    }

    /// <summary>
    /// DH(private, public) into <paramref name="sharedSecret"/>. Returns false (and leaves zeros) when the
    /// result is all zero, i.e. the public key is of small order; WireGuard rejects those.
    /// </summary>
    public static bool TryAgree(Key privateKey, PublicKey publicKey, Span<byte> sharedSecret)
    {
        if (sharedSecret.Length != KeySize)
        {
            throw new ArgumentException("A shared secret is 32 bytes.", nameof(sharedSecret));
        }

        // The KDF (HMAC-BLAKE2s) needs the raw shared secret, so it must be exportable; it is copied
        // straight into the caller's span and the NSec object disposed. libsodium refuses an all-zero
        // result itself; NSec then returns null.
        using var secret = Algorithm.Agree(privateKey, publicKey, new SharedSecretCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
        if (secret is null || !secret.TryExport(SharedSecretBlobFormat.RawSharedSecret, sharedSecret, out int written) || written != KeySize)
        {
            sharedSecret.Clear();
            return false;
        }

        if (IsZero(sharedSecret))
        {
            return false;
        }

        return true;
    }

    /// <summary>DH(private, public) with the public key given as 32 raw bytes.</summary>
    public static bool TryAgree(Key privateKey, ReadOnlySpan<byte> publicKey, Span<byte> sharedSecret) =>
        TryAgree(privateKey, ImportPublicKey(publicKey), sharedSecret);

    /// <summary>DH(private, public) with both keys as raw bytes; the private key is imported and disposed at once.</summary>
    public static bool TryComputeShared(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> sharedSecret)
    {
        using var key = ImportPrivateKey(privateKey);
        return TryAgree(key, publicKey, sharedSecret);
    }

    /// <summary>Derives the 32-byte public key of a raw private key.</summary>
    public static void DerivePublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey)
    {
        using var key = ImportPrivateKey(privateKey);
        WritePublicKey(key, publicKey);
    }

    /// <summary>
    /// A fresh raw private key, clamped as <c>wg genkey</c> does, made by NSec (libsodium's random
    /// generator). Used for node identities, which are stored as text; handshake ephemerals never
    /// leave their <see cref="Key"/>.
    /// </summary>
    public static void GenerateRawPrivateKey(Span<byte> privateKey)
    {
        if (privateKey.Length != KeySize)
        {
            throw new ArgumentException("A private key is 32 bytes.", nameof(privateKey));
        }

        using var key = Key.Create(Algorithm, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
        if (!key.TryExport(KeyBlobFormat.RawPrivateKey, privateKey, out int written) || written != KeySize)
        {
            throw new CryptographicException("X25519 key export failed.");
        }

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
}
