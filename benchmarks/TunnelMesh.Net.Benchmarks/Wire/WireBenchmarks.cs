using BenchmarkDotNet.Attributes;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Benchmarks.Wire;

/// <summary>The per-packet costs of the Wire layer: checksum over a full-MTU packet, and parsing an IPv4 + UDP packet.</summary>
[MemoryDiagnoser]
public class WireBenchmarks
{
    private readonly byte[] _packet = new byte[1420];

    [GlobalSetup]
    public void Setup()
    {
        new Random(42).NextBytes(_packet);
        var udp = _packet.AsSpan(20);
        new UdpHeader(1234, 5678, udp.Length - 8).EmitIpv4(udp, 0x64400001, 0x64400002);
        new Ipv4Header(0x64400001, 0x64400002, IpProtocol.Udp, udp.Length).Emit(_packet);
    }

    [Benchmark]
    public ushort Checksum1420() => InternetChecksum.Compute(_packet);

    [Benchmark]
    public int ParseIpv4() => Ipv4Packet.TryCreate(_packet, out var ip) && ip.VerifyHeaderChecksum() ? ip.Payload.Length : -1;

    [Benchmark]
    public bool ParseIpv4AndVerifyUdp() =>
        Ipv4Packet.TryCreate(_packet, out var ip)
        && ip.VerifyHeaderChecksum()
        && UdpDatagram.TryCreate(ip.Payload, out var udp)
        && udp.VerifyChecksumIpv4(ip.Source, ip.Destination);
}
