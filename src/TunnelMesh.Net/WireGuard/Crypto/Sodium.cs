using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace TunnelMesh.Net.WireGuard.Crypto;

/// <summary>
/// The few libsodium functions the handshake calls directly: X25519 and the random generator. The
/// native library is the one NSec.Cryptography ships (package <c>libsodium</c>) and loads; we call it
/// without NSec's <c>Key</c>/<c>SharedSecret</c> objects because each of those is a guarded allocation
/// (<c>sodium_malloc</c>: an mmap and two mprotects) that cost about 30 µs per DH on this machine, a
/// third of the handshake (docs/BENCHMARKS.md, "Crypto on NSec").
/// </summary>
internal static unsafe partial class Sodium
{
    private const string Library = "libsodium";

    static Sodium()
    {
        // Idempotent and thread-safe; 1 means NSec (or we) initialised it already.
        if (sodium_init() < 0)
        {
            throw new CryptographicException("libsodium failed to initialise.");
        }
    }

    /// <summary>q = X25519(n, p); -1 (and q all zero) when the result is all zero (p of small order).</summary>
    public static int ScalarMult(Span<byte> q, ReadOnlySpan<byte> n, ReadOnlySpan<byte> p)
    {
        fixed (byte* pq = q, pn = n, pp = p)
        {
            return crypto_scalarmult_curve25519(pq, pn, pp);
        }
    }

    /// <summary>q = X25519(n, 9): the public key of the private key n.</summary>
    public static int ScalarMultBase(Span<byte> q, ReadOnlySpan<byte> n)
    {
        fixed (byte* pq = q, pn = n)
        {
            return crypto_scalarmult_curve25519_base(pq, pn);
        }
    }

    /// <summary>Fills <paramref name="buffer"/> from libsodium's generator (the operating system's CSPRNG).</summary>
    public static void RandomBytes(Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            randombytes_buf(p, (nuint)buffer.Length);
        }
    }

    [LibraryImport(Library)]
    private static partial int sodium_init();

    [LibraryImport(Library)]
    private static partial int crypto_scalarmult_curve25519(byte* q, byte* n, byte* p);

    [LibraryImport(Library)]
    private static partial int crypto_scalarmult_curve25519_base(byte* q, byte* n);

    [LibraryImport(Library)]
    private static partial void randombytes_buf(byte* buffer, nuint size);
}
