using System.Security.Cryptography;

namespace TunnelMesh.Net.WireGuard.Crypto;

/// <summary>HMAC (RFC 2104) over BLAKE2s-256, block size 64, as the whitepaper's HMAC.</summary>
internal static class HmacBlake2s
{
    /// <summary>Output size in bytes.</summary>
    public const int Size = Blake2s.MaxOutputSize;

    /// <summary>HMAC(key, a || b) into <paramref name="output32"/>. <paramref name="key"/> is at most 64 bytes.</summary>
    public static void Compute(ReadOnlySpan<byte> key, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> output32)
    {
        if (key.Length > Blake2s.BlockSize)
        {
            throw new ArgumentException("Keys longer than a block are not used by WireGuard.", nameof(key));
        }

        Span<byte> pad = stackalloc byte[Blake2s.BlockSize];
        Span<byte> inner = stackalloc byte[Size];

        pad.Clear();
        key.CopyTo(pad);
        Xor(pad, 0x36);
        var h = new Blake2s(Size);
        h.Update(pad);
        h.Update(a);
        h.Update(b);
        h.Finish(inner);

        pad.Clear();
        key.CopyTo(pad);
        Xor(pad, 0x5C);
        h = new Blake2s(Size);
        h.Update(pad);
        h.Update(inner);
        h.Finish(output32);

        CryptographicOperations.ZeroMemory(pad);
        CryptographicOperations.ZeroMemory(inner);
    }

    private static void Xor(Span<byte> bytes, byte value)
    {
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] ^= value;
        }
    }
}
