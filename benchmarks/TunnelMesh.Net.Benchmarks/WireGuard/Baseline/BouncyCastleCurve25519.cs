using System.Security.Cryptography;
using Org.BouncyCastle.Math.EC.Rfc7748;

namespace TunnelMesh.Net.Benchmarks.WireGuard.Baseline;

/// <summary>BENCHMARK BASELINE ONLY: X25519 through Portable.BouncyCastle, as TunnelMesh.Net did before issue 10.</summary>
internal static class BouncyCastleCurve25519
{
    /// <summary>Size of keys and shared secrets in bytes.</summary>
    public const int KeySize = 32;

    /// <summary>
    /// DH(private, public) into <paramref name="sharedSecret"/>. Returns false (and leaves zeros) when the
    /// result is all zero, i.e. the public key is of small order; WireGuard rejects those.
    /// </summary>
    public static bool TryComputeShared(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> sharedSecret)
    {
        // BouncyCastle works on arrays; handshakes may allocate a little.
        var k = privateKey.ToArray();
        var u = publicKey.ToArray();
        var r = new byte[KeySize];
        try
        {
            X25519.ScalarMult(k, 0, u, 0, r, 0);
            r.CopyTo(sharedSecret);
            return !IsZero(r);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(k);
            CryptographicOperations.ZeroMemory(r);
        }
    }

    /// <summary>DH-Generate: a fresh clamped private key and its public key.</summary>
    public static void Generate(Span<byte> privateKey, Span<byte> publicKey)
    {
        var k = new byte[KeySize];
        var p = new byte[KeySize];
        RandomNumberGenerator.Fill(k);
        k[0] &= 248;
        k[31] = (byte)((k[31] & 127) | 64);
        X25519.ScalarMultBase(k, 0, p, 0);
        k.CopyTo(privateKey);
        p.CopyTo(publicKey);
        CryptographicOperations.ZeroMemory(k);
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
