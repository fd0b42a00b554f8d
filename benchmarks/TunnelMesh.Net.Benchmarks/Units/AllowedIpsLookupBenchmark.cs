using BenchmarkDotNet.Attributes;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Benchmarks.Units;

/// <summary>Longest-prefix lookups in a table of 10,000 random prefixes of mixed lengths.</summary>
[MemoryDiagnoser]
public class AllowedIpsLookupBenchmark
{
    private const int Probes = 1024;
    private readonly AllowedIpsTable<object> _table = new();
    private readonly byte[][] _v4 = new byte[Probes][];
    private readonly byte[][] _v6 = new byte[Probes][];

    [GlobalSetup]
    public void Setup()
    {
#pragma warning disable CA5394 // benchmark data, not security
        var random = new Random(1234);
        var peers = Enumerable.Range(0, 100).Select(_ => new object()).ToArray();
        for (int i = 0; i < 10_000; i++)
        {
            bool v6 = (i & 1) == 1;
            var address = new byte[v6 ? 16 : 4];
            random.NextBytes(address);
            // Mixed lengths, weighted like real configurations: many hosts, many mid-size networks.
            int length = v6 ? random.Next(4) switch { 0 => 128, 1 => 64, 2 => 48, _ => random.Next(16, 129) }
                            : random.Next(4) switch { 0 => 32, 1 => 24, 2 => 16, _ => random.Next(8, 33) };
            _table.Insert(address, length, peers[random.Next(peers.Length)]);
        }

        for (int i = 0; i < Probes; i++)
        {
            _v4[i] = new byte[4];
            _v6[i] = new byte[16];
            random.NextBytes(_v4[i]);
            random.NextBytes(_v6[i]);
        }
#pragma warning restore CA5394
    }

    [Benchmark(OperationsPerInvoke = Probes)]
    public int LookupIPv4()
    {
        int hits = 0;
        foreach (var address in _v4)
        {
            hits += _table.Lookup(address) is null ? 0 : 1;
        }

        return hits;
    }

    [Benchmark(OperationsPerInvoke = Probes)]
    public int LookupIPv6()
    {
        int hits = 0;
        foreach (var address in _v6)
        {
            hits += _table.Lookup(address) is null ? 0 : 1;
        }

        return hits;
    }
}
