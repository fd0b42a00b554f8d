using System.Diagnostics.Metrics;
using TunnelMesh.Net.Server.Metrics;

namespace TunnelMesh.Net.Server.Relay;

/// <summary>
/// The replica relay's instruments on the coordinator's meter (<see cref="MeshMeters.Coordinator"/>):
/// <c>tunnelmesh.coordinator.replica.forwarded</c> and <c>….forwarded.bytes</c> (frames queued to
/// another replica), <c>….received</c> (frames from another replica handed to a node here),
/// <c>….dropped</c> (tag <c>reason</c>: queue_full, unknown_destination, destination_queue_full,
/// malformed, oversize), <c>….refused</c> (replica-link requests without the cluster secret) and
/// <c>….links</c> (outgoing links connected now). Counters are also kept for tests.
/// </summary>
internal sealed class ReplicaRelayMetrics : IDisposable
{
    private static readonly KeyValuePair<string, object?> ReasonQueueFull = new("reason", "queue_full");
    private static readonly KeyValuePair<string, object?> ReasonUnknown = new("reason", "unknown_destination");
    private static readonly KeyValuePair<string, object?> ReasonDestinationFull = new("reason", "destination_queue_full");
    private static readonly KeyValuePair<string, object?> ReasonMalformed = new("reason", "malformed");
    private static readonly KeyValuePair<string, object?> ReasonOversize = new("reason", "oversize");

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _forwarded;
    private readonly Counter<long> _forwardedBytes;
    private readonly Counter<long> _received;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _refused;
    private long _forwardedFrames;
    private long _forwardedByteCount;
    private long _receivedFrames;
    private long _queueFull;
    private long _unknownDestination;
    private long _destinationQueueFull;
    private long _malformed;
    private long _oversize;
    private long _refusedLinks;
    private int _links;
    private bool _enabled;

    public ReplicaRelayMetrics(IMeterFactory? meterFactory = null)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeshMeters.Coordinator) ?? new Meter(MeshMeters.Coordinator);
        _forwarded = _meter.CreateCounter<long>("tunnelmesh.coordinator.replica.forwarded", "{frame}", "Relay frames queued to another replica for a node attached there");
        _forwardedBytes = _meter.CreateCounter<long>("tunnelmesh.coordinator.replica.forwarded.bytes", "By", "Message bytes queued to other replicas (without keys)");
        _received = _meter.CreateCounter<long>("tunnelmesh.coordinator.replica.received", "{frame}", "Relay frames from other replicas handed to a node attached here");
        _dropped = _meter.CreateCounter<long>("tunnelmesh.coordinator.replica.dropped", "{frame}", "Relay frames between replicas dropped, by reason");
        _refused = _meter.CreateCounter<long>("tunnelmesh.coordinator.replica.refused", "{request}", "Replica-link requests refused as unauthenticated");
        _meter.CreateObservableUpDownCounter(
            "tunnelmesh.coordinator.replica.links",
            () => Volatile.Read(ref _enabled) ? [new Measurement<int>(Volatile.Read(ref _links))] : Array.Empty<Measurement<int>>(),
            "{link}",
            "Links to other replicas connected now");
    }

    public ReplicaRelayStatistics Statistics => new(
        Interlocked.Read(ref _forwardedFrames),
        Interlocked.Read(ref _forwardedByteCount),
        Interlocked.Read(ref _receivedFrames),
        Interlocked.Read(ref _queueFull),
        Interlocked.Read(ref _unknownDestination),
        Interlocked.Read(ref _destinationQueueFull),
        Interlocked.Read(ref _malformed),
        Interlocked.Read(ref _oversize),
        Interlocked.Read(ref _refusedLinks),
        Volatile.Read(ref _links));

    public void Forwarded(int bytes)
    {
        Interlocked.Increment(ref _forwardedFrames);
        Interlocked.Add(ref _forwardedByteCount, bytes);
        _forwarded.Add(1);
        _forwardedBytes.Add(bytes);
    }

    public void Received()
    {
        Interlocked.Increment(ref _receivedFrames);
        _received.Add(1);
    }

    public void DroppedQueueFull() => Drop(ref _queueFull, ReasonQueueFull);

    public void DroppedUnknownDestination() => Drop(ref _unknownDestination, ReasonUnknown);

    public void DroppedDestinationQueueFull() => Drop(ref _destinationQueueFull, ReasonDestinationFull);

    public void DroppedMalformed() => Drop(ref _malformed, ReasonMalformed);

    public void DroppedOversize() => Drop(ref _oversize, ReasonOversize);

    public void Refused()
    {
        Interlocked.Increment(ref _refusedLinks);
        _refused.Add(1);
    }

    /// <summary>Publishes the links gauge (only a coordinator running as a replica has one).</summary>
    public void Enable() => Volatile.Write(ref _enabled, true);

    public void LinkUp() => Interlocked.Increment(ref _links);

    public void LinkDown() => Interlocked.Decrement(ref _links);

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private void Drop(ref long counter, KeyValuePair<string, object?> reason)
    {
        Interlocked.Increment(ref counter);
        _dropped.Add(1, reason);
    }
}

/// <summary>A snapshot of <see cref="ReplicaRelayMetrics"/>.</summary>
internal readonly record struct ReplicaRelayStatistics(
    long Forwarded,
    long ForwardedBytes,
    long Received,
    long DroppedQueueFull,
    long DroppedUnknownDestination,
    long DroppedDestinationQueueFull,
    long DroppedMalformed,
    long DroppedOversize,
    long Refused,
    int Links);
