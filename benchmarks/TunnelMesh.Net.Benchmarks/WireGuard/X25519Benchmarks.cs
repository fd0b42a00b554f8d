using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using NSec.Cryptography;
using TunnelMesh.Net.Benchmarks.WireGuard.Baseline;
using TunnelMesh.Net.WireGuard.Crypto;

namespace TunnelMesh.Net.Benchmarks.WireGuard;

/// <summary>
/// The pieces of a handshake's cost: one X25519 agreement and one key generation, BouncyCastle (the
/// baseline) against NSec as the library calls it, and the raw NSec calls without our wrapper.
/// A full handshake does 6 agreements and 2 generations.
/// </summary>
[MemoryDiagnoser]
public class X25519Benchmarks
{
    private readonly byte[] _privateBytes = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _publicBytes = new byte[32];
    private readonly byte[] _shared = new byte[32];
    private readonly byte[] _generatedPrivate = new byte[32];
    private Key _private = null!;
    private PublicKey _public = null!;

    [GlobalSetup]
    public void Setup()
    {
        Curve25519.DerivePublicKey(RandomNumberGenerator.GetBytes(32), _publicBytes);
        _private = Curve25519.ImportPrivateKey(_privateBytes);
        _public = Curve25519.ImportPublicKey(_publicBytes);
    }

    [GlobalCleanup]
    public void Cleanup() => _private.Dispose();

    [Benchmark(Baseline = true)]
    public bool AgreeBouncyCastle() => BouncyCastleCurve25519.TryComputeShared(_privateBytes, _publicBytes, _shared);

    /// <summary>As the handshake calls it: an imported key, the public key as bytes, the secret exported and wiped.</summary>
    [Benchmark]
    public bool AgreeNSec() => Curve25519.TryAgree(_private, _publicBytes, _shared);

    /// <summary>NSec's agreement alone: libsodium plus its guarded allocation for the secret.</summary>
    [Benchmark]
    public bool AgreeNSecRaw()
    {
        using var secret = KeyAgreementAlgorithm.X25519.Agree(_private, _public);
        return secret is not null;
    }

    [Benchmark]
    public void GenerateBouncyCastle() => BouncyCastleCurve25519.Generate(_generatedPrivate, _shared);

    [Benchmark]
    public void GenerateNSec()
    {
        using var key = Curve25519.Generate(_shared);
    }
}
