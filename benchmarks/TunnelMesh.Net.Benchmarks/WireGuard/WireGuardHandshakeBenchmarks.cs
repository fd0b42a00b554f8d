using BenchmarkDotNet.Attributes;
using TunnelMesh.Net.Benchmarks.WireGuard.Baseline;
using TunnelMesh.Net.Wire;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Benchmarks.WireGuard;

/// <summary>
/// A whole handshake, both sides: initiation, response, and both keypairs derived. <see cref="Libsodium"/> is
/// the library's handshake (X25519: libsodium on spans); <see cref="BouncyCastle"/> is the same code as
/// it was before issue 10, X25519 through Portable.BouncyCastle, kept in this project as the baseline.
/// </summary>
[MemoryDiagnoser]
public class WireGuardHandshakeBenchmarks
{
    private readonly byte[] _initiation = new byte[WireGuardSpec.InitiationSize];
    private readonly byte[] _response = new byte[WireGuardSpec.ResponseSize];
    private LocalIdentity _initiator = null!;
    private LocalIdentity _responder = null!;
    private NoiseHandshake _initiatorSide = null!;
    private NoiseHandshake _responderSide = null!;
    private Func<NodePublicKey, NoiseHandshake?> _find = null!;
    private BouncyCastleNoiseHandshake _baselineInitiatorSide = null!;
    private BouncyCastleNoiseHandshake _baselineResponderSide = null!;
    private Func<NodePublicKey, BouncyCastleNoiseHandshake?> _baselineFind = null!;
    private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [GlobalSetup]
    public void Setup()
    {
        _initiator = new LocalIdentity(NodePrivateKey.Generate());
        _responder = new LocalIdentity(NodePrivateKey.Generate());
        _initiatorSide = new NoiseHandshake(_initiator, _responder.PublicKey, []);
        _responderSide = new NoiseHandshake(_responder, _initiator.PublicKey, []);
        _find = _ => _responderSide;
        _baselineInitiatorSide = new BouncyCastleNoiseHandshake(_initiator, _responder.PublicKey, []);
        _baselineResponderSide = new BouncyCastleNoiseHandshake(_responder, _initiator.PublicKey, []);
        _baselineFind = _ => _baselineResponderSide;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _initiatorSide.Dispose();
        _responderSide.Dispose();
        _initiator.Dispose();
        _responder.Dispose();
    }

    [Benchmark(Baseline = true)]
    public uint BouncyCastle()
    {
        _now = _now.AddSeconds(1); // timestamps must increase or the responder sees a replay
        _baselineInitiatorSide.CreateInitiation(_initiation, 1, Tai64N.FromDateTimeOffset(_now));
        if (BouncyCastleNoiseHandshake.ConsumeInitiation(_responder, _initiation, _baselineFind, out _) != HandshakeResult.Ok)
        {
            throw new InvalidOperationException("initiation refused");
        }

        _baselineResponderSide.CreateResponse(_response, 2);
        using var responderKeys = _baselineResponderSide.DeriveKeypair(0);
        if (_baselineInitiatorSide.ConsumeResponse(_response) != HandshakeResult.Ok)
        {
            throw new InvalidOperationException("response refused");
        }

        using var initiatorKeys = _baselineInitiatorSide.DeriveKeypair(0);
        return initiatorKeys.RemoteIndex + responderKeys.RemoteIndex;
    }

    /// <summary>
    /// The part of either handshake that is not key exchange: the two keypairs at its end (two BCL
    /// ChaCha20Poly1305 instances and an 8192-bit replay window each).
    /// </summary>
    [Benchmark]
    public uint TwoKeypairsOnly()
    {
        using var a = new Keypair(_initiation.AsSpan(0, 32), _initiation.AsSpan(32, 32), 1, 2, isInitiator: true, 0);
        using var b = new Keypair(_initiation.AsSpan(32, 32), _initiation.AsSpan(0, 32), 2, 1, isInitiator: false, 0);
        return a.RemoteIndex + b.RemoteIndex;
    }

    [Benchmark]
    public uint Libsodium()
    {
        _now = _now.AddSeconds(1);
        _initiatorSide.CreateInitiation(_initiation, 1, Tai64N.FromDateTimeOffset(_now));
        if (NoiseHandshake.ConsumeInitiation(_responder, _initiation, _find, out _) != HandshakeResult.Ok)
        {
            throw new InvalidOperationException("initiation refused");
        }

        _responderSide.CreateResponse(_response, 2);
        using var responderKeys = _responderSide.DeriveKeypair(0);
        if (_initiatorSide.ConsumeResponse(_response) != HandshakeResult.Ok)
        {
            throw new InvalidOperationException("response refused");
        }

        using var initiatorKeys = _initiatorSide.DeriveKeypair(0);
        return initiatorKeys.RemoteIndex + responderKeys.RemoteIndex;
    }
}
