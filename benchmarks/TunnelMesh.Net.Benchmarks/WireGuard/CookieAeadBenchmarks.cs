using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using TunnelMesh.Net.Benchmarks.WireGuard.Baseline;
using TunnelMesh.Net.WireGuard.Crypto;

namespace TunnelMesh.Net.Benchmarks.WireGuard;

/// <summary>
/// Sealing a cookie reply's 16-byte cookie with XChaCha20-Poly1305 (mac1 as associated data): our own
/// HChaCha20 + BCL ChaCha20Poly1305 construction from before issue 10 against NSec's, with the key
/// imported once (as <see cref="CookieAead"/> is used) and imported on every call.
/// </summary>
[MemoryDiagnoser]
public class CookieAeadBenchmarks
{
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _nonce = RandomNumberGenerator.GetBytes(24);
    private readonly byte[] _cookie = RandomNumberGenerator.GetBytes(16);
    private readonly byte[] _mac1 = RandomNumberGenerator.GetBytes(16);
    private readonly byte[] _output = new byte[32];
    private CookieAead _aead = null!;

    [GlobalSetup]
    public void Setup() => _aead = new CookieAead(_key);

    [GlobalCleanup]
    public void Cleanup() => _aead.Dispose();

    [Benchmark(Baseline = true)]
    public void SealManaged() => ManagedXChaCha20Poly1305.Seal(_key, _nonce, _cookie, _output.AsSpan(0, 16), _output.AsSpan(16), _mac1);

    [Benchmark]
    public void SealNSec() => _aead.Seal(_nonce, _cookie, _mac1, _output);

    [Benchmark]
    public void SealNSecImportingTheKey()
    {
        using var aead = new CookieAead(_key);
        aead.Seal(_nonce, _cookie, _mac1, _output);
    }
}
