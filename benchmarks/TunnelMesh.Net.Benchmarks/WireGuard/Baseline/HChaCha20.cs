using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;

namespace TunnelMesh.Net.Benchmarks.WireGuard.Baseline;

/// <summary>
/// BENCHMARK BASELINE ONLY (TunnelMesh.Net before issue 10).
/// HChaCha20 (draft-irtf-cfrg-xchacha §2.2): the ChaCha20 block function without the final addition,
/// giving words 0..3 and 12..15 as a 32-byte subkey. Used to build XChaCha20-Poly1305.
/// </summary>
internal static class HChaCha20
{
    /// <summary>Key and subkey size.</summary>
    public const int KeySize = 32;

    /// <summary>Input (nonce) size.</summary>
    public const int InputSize = 16;

    /// <summary>Derives the subkey from a 32-byte key and a 16-byte input.</summary>
    public static void DeriveSubkey(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> subkey)
    {
        if (key.Length != KeySize || input.Length != InputSize || subkey.Length != KeySize)
        {
            throw new ArgumentException("HChaCha20 takes a 32-byte key and a 16-byte input and gives 32 bytes.");
        }

        Span<uint> x = stackalloc uint[16];
        x[0] = 0x61707865;
        x[1] = 0x3320646E;
        x[2] = 0x79622D32;
        x[3] = 0x6B206574;
        for (int i = 0; i < 8; i++)
        {
            x[4 + i] = BinaryPrimitives.ReadUInt32LittleEndian(key[(i * 4)..]);
        }

        for (int i = 0; i < 4; i++)
        {
            x[12 + i] = BinaryPrimitives.ReadUInt32LittleEndian(input[(i * 4)..]);
        }

        for (int round = 0; round < 10; round++)
        {
            QuarterRound(x, 0, 4, 8, 12);
            QuarterRound(x, 1, 5, 9, 13);
            QuarterRound(x, 2, 6, 10, 14);
            QuarterRound(x, 3, 7, 11, 15);
            QuarterRound(x, 0, 5, 10, 15);
            QuarterRound(x, 1, 6, 11, 12);
            QuarterRound(x, 2, 7, 8, 13);
            QuarterRound(x, 3, 4, 9, 14);
        }

        for (int i = 0; i < 4; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(subkey[(i * 4)..], x[i]);
            BinaryPrimitives.WriteUInt32LittleEndian(subkey[(16 + (i * 4))..], x[12 + i]);
        }

        CryptographicOperations.ZeroMemory(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x));
    }

    private static void QuarterRound(Span<uint> x, int a, int b, int c, int d)
    {
        x[a] += x[b];
        x[d] = BitOperations.RotateLeft(x[d] ^ x[a], 16);
        x[c] += x[d];
        x[b] = BitOperations.RotateLeft(x[b] ^ x[c], 12);
        x[a] += x[b];
        x[d] = BitOperations.RotateLeft(x[d] ^ x[a], 8);
        x[c] += x[d];
        x[b] = BitOperations.RotateLeft(x[b] ^ x[c], 7);
    }
}
