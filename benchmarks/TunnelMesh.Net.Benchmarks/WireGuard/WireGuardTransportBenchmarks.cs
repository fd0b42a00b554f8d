using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Benchmarks.WireGuard;

/// <summary>
/// Seal and open of a 1420-byte packet in place, against a bare ChaCha20Poly1305.Encrypt of the same
/// buffer as the floor. Open needs a fresh message each time, so it measures seal + open.
/// </summary>
[MemoryDiagnoser]
public class WireGuardTransportBenchmarks
{
    private const int PacketSize = 1420;
    private readonly byte[] _nonce = new byte[12];
    private readonly byte[] _tag = new byte[16];
    private Keypair _sender = null!;
    private Keypair _receiver = null!;
    private ChaCha20Poly1305 _raw = null!;
    private PacketBuffer _packet = null!;

    [GlobalSetup]
    public void Setup()
    {
        var a = RandomNumberGenerator.GetBytes(32);
        var b = RandomNumberGenerator.GetBytes(32);
        _sender = new Keypair(a, b, 1, 2, isInitiator: true, 0);
        _receiver = new Keypair(b, a, 2, 1, isInitiator: false, 0);
        _raw = new ChaCha20Poly1305(a);
        _packet = new PacketBuffer(null);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _sender.Dispose();
        _receiver.Dispose();
        _raw.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void RawChaCha20Poly1305Encrypt()
    {
        var data = _packet.Array.AsSpan(PacketBuffer.HeadRoom, PacketSize);
        _raw.Encrypt(_nonce, data, data, _tag);
    }

    /// <summary>The floor for <see cref="SealThenOpen"/>: encrypt then decrypt the same buffer with the bare AEAD.</summary>
    [Benchmark]
    public void RawEncryptThenDecrypt()
    {
        var data = _packet.Array.AsSpan(PacketBuffer.HeadRoom, PacketSize);
        _raw.Encrypt(_nonce, data, data, _tag);
        _raw.Decrypt(_nonce, data, _tag, data);
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
