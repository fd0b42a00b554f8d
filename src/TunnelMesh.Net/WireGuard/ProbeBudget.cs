namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// A fixed-window count of path messages a peer may make this node send (pongs): at most
/// <c>limit</c> per <c>window</c>. A peer that pings faster (a flood, or pings replayed through a
/// buggy relay) gets no more answers until the window turns; the refusals are counted.
/// </summary>
internal sealed class ProbeBudget(TimeProvider time, int limit, TimeSpan window)
{
    private readonly Lock _gate = new();
    private long _windowStart = long.MinValue;
    private int _used;
    private long _refused;

    /// <summary>Answers refused since the start.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>Takes one answer from the budget; false when the window's are used up.</summary>
    public bool TryTake()
    {
        long now = time.GetTimestamp();
        lock (_gate)
        {
            if (_windowStart == long.MinValue || time.GetElapsedTime(_windowStart, now) >= window)
            {
                _windowStart = now;
                _used = 0;
            }

            if (_used < limit)
            {
                _used++;
                return true;
            }
        }

        Interlocked.Increment(ref _refused);
        return false;
    }
}
