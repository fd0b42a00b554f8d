using System.Security.Cryptography;

namespace TunnelMesh.Net.WireGuard.Crypto;

/// <summary>
/// The whitepaper's KDF1/KDF2/KDF3 (HKDF over HMAC-BLAKE2s): τ0 = HMAC(key, input), τ1 = HMAC(τ0, 0x1),
/// τi = HMAC(τ0, τ(i-1) || i). Outputs are 32 bytes each and may alias the key.
/// </summary>
internal static class NoiseKdf
{
    /// <summary>KDF1: one output.</summary>
    public static void Derive(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> t1) =>
        Derive(key, input, t1, default, default);

    /// <summary>KDF2: two outputs.</summary>
    public static void Derive(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> t1, Span<byte> t2) =>
        Derive(key, input, t1, t2, default);

    /// <summary>KDF3 (or fewer outputs when the later spans are empty).</summary>
    public static void Derive(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> t1, Span<byte> t2, Span<byte> t3)
    {
        Span<byte> prk = stackalloc byte[HmacBlake2s.Size];
        Span<byte> previous = stackalloc byte[HmacBlake2s.Size];
        Span<byte> counter = stackalloc byte[1];

        HmacBlake2s.Compute(key, input, default, prk);

        counter[0] = 1;
        HmacBlake2s.Compute(prk, counter, default, previous);
        previous.CopyTo(t1);

        if (!t2.IsEmpty)
        {
            counter[0] = 2;
            HmacBlake2s.Compute(prk, previous, counter, previous);
            previous.CopyTo(t2);
        }

        if (!t3.IsEmpty)
        {
            counter[0] = 3;
            HmacBlake2s.Compute(prk, previous, counter, previous);
            previous.CopyTo(t3);
        }

        CryptographicOperations.ZeroMemory(prk);
        CryptographicOperations.ZeroMemory(previous);
    }
}
