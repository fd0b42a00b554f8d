using BenchmarkDotNet.Attributes;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Benchmarks.Units;

/// <summary>The replay check on in-order and lightly reordered counters.</summary>
[MemoryDiagnoser]
public class ReplayWindowBenchmark
{
    private const int Count = 4096;
    private readonly ReplayWindow _window = new();
    private ulong _base;

    [Benchmark(OperationsPerInvoke = Count)]
    public int InOrder()
    {
        int accepted = 0;
        for (int i = 0; i < Count; i++)
        {
            accepted += _window.TryAccept(_base++) ? 1 : 0;
        }

        return accepted;
    }

    [Benchmark(OperationsPerInvoke = Count)]
    public int Reordered()
    {
        int accepted = 0;
        for (int i = 0; i < Count; i++)
        {
            // Pairs swapped: 1, 0, 3, 2, ...
            accepted += _window.TryAccept(_base + (ulong)(i ^ 1)) ? 1 : 0;
        }

        _base += Count;
        return accepted;
    }
}
