using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace TunnelMesh.Net.WireGuard.Crypto;

/// <summary>
/// BLAKE2s (RFC 7693), unkeyed or keyed, with 1..32 bytes of output. A value type working over spans,
/// so hashing allocates nothing. WireGuard uses it as HASH (32-byte output, no key) and as MAC
/// (16-byte output, keyed) for mac1, mac2 and cookies.
/// </summary>
/// <remarks>
/// Ours because NSec (libsodium) offers BLAKE2b but not BLAKE2s. The tests check it against RFC 7693
/// (appendix B and the appendix E self-test) and, as properties, against BouncyCastle.Cryptography's
/// <c>Blake2sDigest</c>, which only the tests reference.
/// </remarks>
internal struct Blake2s
{
    /// <summary>Block size in bytes (also the HMAC block size).</summary>
    public const int BlockSize = 64;

    /// <summary>Largest output (and key) size in bytes.</summary>
    public const int MaxOutputSize = 32;

    private static ReadOnlySpan<uint> InitialVector =>
    [
        0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
    ];

    private static ReadOnlySpan<byte> Sigma =>
    [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3,
        11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4,
        7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8,
        9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13,
        2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9,
        12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11,
        13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10,
        6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5,
        10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0,
    ];

    private StateWords _h;
    private BlockBytes _buffer;
    private ulong _counter;
    private int _buffered;
    private int _outputLength;

    /// <summary>Starts a hash with <paramref name="outputLength"/> bytes of output, keyed when <paramref name="key"/> is not empty.</summary>
    public Blake2s(int outputLength, ReadOnlySpan<byte> key = default)
    {
        if (outputLength is < 1 or > MaxOutputSize)
        {
            throw new ArgumentOutOfRangeException(nameof(outputLength));
        }

        if (key.Length > MaxOutputSize)
        {
            throw new ArgumentException("A BLAKE2s key is at most 32 bytes.", nameof(key));
        }

        _outputLength = outputLength;
        InitialVector.CopyTo(_h);
        _h[0] ^= 0x01010000u ^ ((uint)key.Length << 8) ^ (uint)outputLength;
        if (!key.IsEmpty)
        {
            Span<byte> block = _buffer;
            block.Clear();
            key.CopyTo(block);
            _buffered = BlockSize;
        }
    }

    /// <summary>HASH(input): unkeyed BLAKE2s-256 of the concatenation of the inputs.</summary>
    public static void Hash(ReadOnlySpan<byte> input, Span<byte> output32)
    {
        var b = new Blake2s(MaxOutputSize);
        b.Update(input);
        b.Finish(output32);
    }

    /// <summary>HASH(a || b).</summary>
    public static void Hash(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> output32)
    {
        var h = new Blake2s(MaxOutputSize);
        h.Update(a);
        h.Update(b);
        h.Finish(output32);
    }

    /// <summary>MAC(key, input): keyed BLAKE2s with a 16-byte output, as WireGuard's mac1, mac2 and cookie.</summary>
    public static void Mac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> output16)
    {
        var b = new Blake2s(16, key);
        b.Update(input);
        b.Finish(output16);
    }

    /// <summary>Absorbs more input.</summary>
    public void Update(ReadOnlySpan<byte> input)
    {
        Span<byte> block = _buffer;
        while (!input.IsEmpty)
        {
            // The last block is compressed only in Finish, so a full buffer waits for more input.
            if (_buffered == BlockSize)
            {
                _counter += BlockSize;
                Compress(block, last: false);
                _buffered = 0;
            }

            int n = Math.Min(BlockSize - _buffered, input.Length);
            input[..n].CopyTo(block[_buffered..]);
            _buffered += n;
            input = input[n..];
        }
    }

    /// <summary>Writes the digest (exactly the output length given at construction) and wipes the state.</summary>
    public void Finish(Span<byte> output)
    {
        if (output.Length != _outputLength)
        {
            throw new ArgumentException($"The output is {_outputLength} bytes.", nameof(output));
        }

        Span<byte> block = _buffer;
        _counter += (ulong)_buffered;
        block[_buffered..].Clear();
        Compress(block, last: true);

        Span<byte> full = stackalloc byte[MaxOutputSize];
        for (int i = 0; i < 8; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(full[(i * 4)..], _h[i]);
        }

        full[..output.Length].CopyTo(output);
        CryptographicOperations.ZeroMemory(full);
        CryptographicOperations.ZeroMemory(block);
        ((Span<uint>)_h).Clear();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void G(Span<uint> v, int a, int b, int c, int d, uint x, uint y)
    {
        v[a] = v[a] + v[b] + x;
        v[d] = BitOperations.RotateRight(v[d] ^ v[a], 16);
        v[c] = v[c] + v[d];
        v[b] = BitOperations.RotateRight(v[b] ^ v[c], 12);
        v[a] = v[a] + v[b] + y;
        v[d] = BitOperations.RotateRight(v[d] ^ v[a], 8);
        v[c] = v[c] + v[d];
        v[b] = BitOperations.RotateRight(v[b] ^ v[c], 7);
    }

    private void Compress(ReadOnlySpan<byte> block, bool last)
    {
        Span<uint> m = stackalloc uint[16];
        for (int i = 0; i < 16; i++)
        {
            m[i] = BinaryPrimitives.ReadUInt32LittleEndian(block[(i * 4)..]);
        }

        Span<uint> v = stackalloc uint[16];
        ((ReadOnlySpan<uint>)_h).CopyTo(v);
        InitialVector.CopyTo(v[8..]);
        v[12] ^= (uint)_counter;
        v[13] ^= (uint)(_counter >> 32);
        if (last)
        {
            v[14] = ~v[14];
        }

        var sigma = Sigma;
        for (int round = 0; round < 10; round++)
        {
            var s = sigma.Slice(round * 16, 16);
            G(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
            G(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
            G(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
            G(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
            G(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
            G(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
            G(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
            G(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
        }

        for (int i = 0; i < 8; i++)
        {
            _h[i] ^= v[i] ^ v[i + 8];
        }

        CryptographicOperations.ZeroMemory(System.Runtime.InteropServices.MemoryMarshal.AsBytes(m));
    }

    [InlineArray(8)]
    private struct StateWords
    {
        private uint _element;
    }

    [InlineArray(BlockSize)]
    private struct BlockBytes
    {
        private byte _element;
    }
}
