using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// The pings of one peer's path choice still waiting for a pong (the last <see cref="MaxPending"/>),
/// what each endpoint answered, and the last probe round's result. Not thread-safe: its owner
/// (<see cref="PeerPaths"/>) uses it under its lock.
/// </summary>
internal sealed class ProbeLog(TimeProvider time)
{
    /// <summary>Pings remembered: a pong for an older one no longer counts.</summary>
    public const int MaxPending = 64;

    private const int MaxResults = 4 * PathControl.MaxCandidates;

    private readonly Pending[] _pending = new Pending[MaxPending];
    private readonly Dictionary<Endpoint, CandidateState> _results = [];
    private int _next;
    private int _lastRound = -1;

    /// <summary>The last probe round's result: its first answer, or its last ping when nothing answered.</summary>
    public ProbeOutcome? Last { get; private set; }

    /// <summary>A ping of <paramref name="round"/> with <paramref name="txid"/> went to <paramref name="endpoint"/>.</summary>
    public void Sent(ulong txid, Endpoint endpoint, int round, Func<IEnumerable<Endpoint>> keep)
    {
        _pending[_next] = new Pending(txid, endpoint, time.GetTimestamp(), round);
        _next = (_next + 1) % MaxPending;
        var now = time.GetUtcNow();
        _results[endpoint] = _results.GetValueOrDefault(endpoint) with { Endpoint = endpoint, LastPing = now };
        if (_results.Count > MaxResults)
        {
            Prune(keep());
        }

        if (round != _lastRound || Last is not { Answered: true })
        {
            Last = new ProbeOutcome(now, endpoint, false, null); // within a round, an answer stays the result
            _lastRound = round;
        }
    }

    /// <summary>
    /// A pong with <paramref name="txid"/> came from <paramref name="source"/>. It answers a ping only
    /// when one with that id is pending and went to that source; the ping is then used up, so a second
    /// copy answers nothing.
    /// </summary>
    public PongMatch Answered(ulong txid, Endpoint source)
    {
        int index = -1;
        for (int i = 0; i < MaxPending; i++)
        {
            if (_pending[i].Txid == txid && _pending[i].Endpoint.IsSet)
            {
                index = i;
                break;
            }
        }

        if (index < 0)
        {
            return PongMatch.Unmatched;
        }

        var ping = _pending[index];
        _pending[index] = default;
        if (ping.Endpoint != source)
        {
            return PongMatch.FromElsewhere;
        }

        var now = time.GetUtcNow();
        var rtt = time.GetElapsedTime(ping.SentAt);
        _results[source] = _results.GetValueOrDefault(source) with { Endpoint = source, LastPong = now, RoundTrip = rtt };
        if (ping.Round == _lastRound && Last is { Answered: false })
        {
            Last = new ProbeOutcome(now - rtt, source, true, rtt);
        }

        return PongMatch.Matched;
    }

    /// <summary>What probing found for <paramref name="endpoint"/> (default when it was never pinged).</summary>
    public CandidateState ResultOf(Endpoint endpoint) => _results.GetValueOrDefault(endpoint);

    private void Prune(IEnumerable<Endpoint> keep)
    {
        var kept = keep.ToHashSet();
        foreach (var key in _results.Keys.ToList())
        {
            if (!kept.Contains(key))
            {
                _results.Remove(key);
            }
        }
    }

    private readonly record struct Pending(ulong Txid, Endpoint Endpoint, long SentAt, int Round);
}

/// <summary>What a pong answered (<see cref="ProbeLog.Answered"/>).</summary>
internal enum PongMatch
{
    /// <summary>A ping of ours, from where it went: a round trip.</summary>
    Matched,

    /// <summary>No pending ping has its id (forged, replayed, stale).</summary>
    Unmatched,

    /// <summary>The id of a ping that went elsewhere: proves no path (the ping is used up).</summary>
    FromElsewhere,
}
