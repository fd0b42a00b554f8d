namespace TunnelMesh.Net.Tests.Support;

/// <summary>
/// Checks that an operation allocates nothing per call. It warms the code up first (tiered JIT
/// allocates a few hundred bytes, once, on the calling thread), then allows only a bound far below
/// one small object per call: one 24-byte allocation per call would exceed it many times over.
/// </summary>
public static class Allocations
{
    public static void AssertNonePerCall(int calls, Action<int> operation, string what, int warmUp = 30_000)
    {
        for (int i = 0; i < warmUp; i++)
        {
            operation(i);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < calls; i++)
        {
            operation(i);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < Math.Max(1024, calls / 16), $"{what} allocated {allocated} bytes over {calls} calls");
    }
}
