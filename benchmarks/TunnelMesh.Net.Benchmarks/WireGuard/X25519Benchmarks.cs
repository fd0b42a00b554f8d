using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using NSec.Cryptography;
using TunnelMesh.Net.Benchmarks.WireGuard.Baseline;
using TunnelMesh.Net.WireGuard.Crypto;

namespace TunnelMesh.Net.Benchmarks.WireGuard;

/// <summary>
/// The pieces of a handshake's cost: one X25519 agreement and one key generation, BouncyCastle (the
/// baseline) against NSec's key objects and against libsodium called on spans, as the library does.
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
        _private = Key.Import(KeyAgreementAlgorithm.X25519, _privateBytes, KeyBlobFormat.RawPrivateKey);
        _public = PublicKey.Import(KeyAgreementAlgorithm.X25519, _publicBytes, KeyBlobFormat.RawPublicKey);
    }

    [GlobalCleanup]
    public void Cleanup() => _private.Dispose();

    [Benchmark(Baseline = true)]
    public bool AgreeBouncyCastle() => BouncyCastleCurve25519.TryComputeShared(_privateBytes, _publicBytes, _shared);

    /// <summary>NSec's key objects, as the first NSec version of the handshake used them: the shared secret is a guarded allocation, exported and disposed.</summary>
    [Benchmark]
    public bool AgreeNSecKeys()
    {
        using var secret = KeyAgreementAlgorithm.X25519.Agree(_private, _public, new SharedSecretCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
        return secret is not null && secret.TryExport(SharedSecretBlobFormat.RawSharedSecret, _shared, out _);
    }

    /// <summary>As the handshake calls it now: libsodium's crypto_scalarmult_curve25519 on spans.</summary>
    [Benchmark]
    public bool AgreeLibsodium() => Curve25519.TryAgree(_privateBytes, _publicBytes, _shared);

    [Benchmark]
    public void GenerateBouncyCastle() => BouncyCastleCurve25519.Generate(_generatedPrivate, _shared);

    /// <summary>An NSec key (guarded allocation) and its public key exported.</summary>
    [Benchmark]
    public bool GenerateNSecKey()
    {
        using var key = Key.Create(KeyAgreementAlgorithm.X25519);
        return key.PublicKey.TryExport(KeyBlobFormat.RawPublicKey, _shared, out _);
    }

    /// <summary>As the handshake calls it now: random bytes, clamped, and crypto_scalarmult_curve25519_base.</summary>
    [Benchmark]
    public void GenerateLibsodium() => Curve25519.Generate(_generatedPrivate, _shared);
}
