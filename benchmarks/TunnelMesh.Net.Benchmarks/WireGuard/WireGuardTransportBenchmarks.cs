using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using NSec.Cryptography;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Benchmarks.WireGuard;

/// <summary>
/// ChaCha20-Poly1305 on a 1420-byte packet in place: the BCL's (OpenSSL underneath; the data path's
/// choice) against NSec's (libsodium), each alone and encrypt-then-decrypt, and the <see cref="Keypair"/>
/// seal and seal-then-open built on the BCL one. Open needs a fresh message each time, so the
/// decrypt figures include the encrypt.
/// </summary>
[MemoryDiagnoser]
public class WireGuardTransportBenchmarks
{
    private const int PacketSize = 1420;
    private const int TagSize = 16;
    private readonly byte[] _nonce = new byte[12];
    private readonly byte[] _tag = new byte[TagSize];
    private Keypair _sender = null!;
    private Keypair _receiver = null!;
    private System.Security.Cryptography.ChaCha20Poly1305 _bcl = null!;
    private Key _nsecKey = null!;
    private PacketBuffer _packet = null!;

    [GlobalSetup]
    public void Setup()
    {
        var a = RandomNumberGenerator.GetBytes(32);
        var b = RandomNumberGenerator.GetBytes(32);
        _sender = new Keypair(a, b, 1, 2, isInitiator: true, 0);
        _receiver = new Keypair(b, a, 2, 1, isInitiator: false, 0);
        _bcl = new System.Security.Cryptography.ChaCha20Poly1305(a);
        _nsecKey = Key.Import(AeadAlgorithm.ChaCha20Poly1305, a, KeyBlobFormat.RawSymmetricKey);
        _packet = new PacketBuffer(null);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _sender.Dispose();
        _receiver.Dispose();
        _bcl.Dispose();
        _nsecKey.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void BclEncrypt()
    {
        var data = _packet.Array.AsSpan(PacketBuffer.HeadRoom, PacketSize);
        _bcl.Encrypt(_nonce, data, data, _tag);
    }

    [Benchmark]
    public void NSecEncrypt()
    {
        // NSec writes ciphertext || tag; in place means the output starts where the plaintext does.
        var data = _packet.Array.AsSpan(PacketBuffer.HeadRoom, PacketSize + TagSize);
        AeadAlgorithm.ChaCha20Poly1305.Encrypt(_nsecKey, _nonce, default, data[..PacketSize], data);
    }

    [Benchmark]
    public bool BclEncryptThenDecrypt()
    {
        var data = _packet.Array.AsSpan(PacketBuffer.HeadRoom, PacketSize);
        _bcl.Encrypt(_nonce, data, data, _tag);
        _bcl.Decrypt(_nonce, data, _tag, data);
        return true;
    }

    [Benchmark]
    public bool NSecEncryptThenDecrypt()
    {
        var data = _packet.Array.AsSpan(PacketBuffer.HeadRoom, PacketSize + TagSize);
        AeadAlgorithm.ChaCha20Poly1305.Encrypt(_nsecKey, _nonce, default, data[..PacketSize], data);
        return AeadAlgorithm.ChaCha20Poly1305.Decrypt(_nsecKey, _nonce, default, data, data[..PacketSize]);
    }

    [Benchmark]
    public bool Seal()
    {
        _packet.Reset();
        _packet.Length = PacketSize;
        return _sender.TrySeal(_packet);
    }

    [Benchmark]
    public int SealThenOpen()
    {
        _packet.Reset();
        _packet.Length = PacketSize;
        _sender.TrySeal(_packet);
        return (int)_receiver.TryOpen(_packet);
    }
}
