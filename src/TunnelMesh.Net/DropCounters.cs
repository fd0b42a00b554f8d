using System.Diagnostics.Metrics;

namespace TunnelMesh.Net;

/// <summary>
/// Thread-safe counters of dropped datagrams and packets by <see cref="DropReason"/>, shared by every
/// layer of one node. Also published as the <c>tunnelmesh.drops</c> metric, tagged by reason.
/// </summary>
internal sealed class DropCounters
{
    private static readonly DropReason[] Reasons = Enum.GetValues<DropReason>();
    private readonly long[] _counts = new long[Reasons.Length];

    /// <summary>Counts one drop.</summary>
    public void Increment(DropReason reason) => Interlocked.Increment(ref _counts[(int)reason]);

    /// <summary>Counts <paramref name="count"/> drops.</summary>
    public void Add(DropReason reason, long count) => Interlocked.Add(ref _counts[(int)reason], count);

    /// <summary>The current count for one reason.</summary>
    public long Get(DropReason reason) => Interlocked.Read(ref _counts[(int)reason]);

    /// <summary>The sum over every reason.</summary>
    public long Total
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _counts.Length; i++)
            {
                sum += Interlocked.Read(ref _counts[i]);
            }

            return sum;
        }
    }

    /// <summary>A copy of the non-zero counts.</summary>
    public IReadOnlyDictionary<DropReason, long> Snapshot()
    {
        var result = new Dictionary<DropReason, long>();
        foreach (var reason in Reasons)
        {
            long n = Get(reason);
            if (n != 0)
            {
                result[reason] = n;
            }
        }

        return result;
    }

    /// <summary>Observations for an <see cref="ObservableCounter{T}"/>, tagged by reason and with <paramref name="tag"/>.</summary>
    internal IEnumerable<Measurement<long>> Observe(KeyValuePair<string, object?> tag)
    {
        foreach (var reason in Reasons)
        {
            yield return new Measurement<long>(Get(reason), tag, new KeyValuePair<string, object?>("reason", reason.ToString()));
        }
    }
}
