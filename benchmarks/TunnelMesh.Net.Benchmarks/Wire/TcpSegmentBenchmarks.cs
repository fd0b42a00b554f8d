using BenchmarkDotNet.Attributes;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Benchmarks.Wire;

/// <summary>
/// The per-segment costs of the TCP wire code: parsing a full-size data segment with timestamps
/// (view, options, checksum) and emitting an ACK header with timestamps and SACK blocks. Both must
/// allocate nothing.
/// </summary>
[MemoryDiagnoser]
public class TcpSegmentBenchmarks
{
    private const uint Source = 0x64400001;
    private const uint Destination = 0x64400002;

    private readonly byte[] _segment = new byte[1400];
    private readonly byte[] _header = new byte[TcpSegment.MaxHeaderLength];
    private TcpOptions _ackOptions;

    [GlobalSetup]
    public void Setup()
    {
        new Random(42).NextBytes(_segment);
        var options = TcpOptions.None;
        options.HasTimestamps = true;
        options.TimestampValue = 123456;
        options.TimestampEcho = 654321;
        new TcpHeader(40000, 443, 1_000_000, 2_000_000, TcpFlags.Ack | TcpFlags.Psh, 1024).Emit(_segment, options);
        TcpSegment.FillChecksumIpv4(_segment, Source, Destination);

        _ackOptions = options;
        _ackOptions.SetSackBlocks([new SackBlock(3_000_000, 3_001_400), new SackBlock(3_010_000, 3_020_000)]);
    }

    [Benchmark]
    public uint ParseDataSegment() =>
        TcpSegment.TryCreate(_segment, out var segment)
        && segment.VerifyChecksumIpv4(Source, Destination)
        && segment.TryParseOptions(out var options)
            ? options.TimestampValue + (uint)segment.Payload.Length
            : 0;

    [Benchmark]
    public int EmitAckHeader() => new TcpHeader(443, 40000, 2_000_000, 1_001_348, TcpFlags.Ack, 2048).Emit(_header, _ackOptions);
}
