using System.Diagnostics.Metrics;
using System.Text;
using TunnelMesh.Net.Server.Api;

namespace TunnelMesh.Net.Server.Metrics;

/// <summary>
/// The coordinator's instruments on the meter <see cref="MeshMeters.Coordinator"/> (from the
/// application's <see cref="IMeterFactory"/> when DI has one): <c>tunnelmesh.coordinator.joins</c>
/// (tags <c>result</c>: joined, rejoined, refused; <c>reason</c> on refusals),
/// <c>tunnelmesh.coordinator.map.streams</c> (open now), <c>tunnelmesh.coordinator.map.version</c>,
/// <c>tunnelmesh.coordinator.map.deltas</c> and <c>tunnelmesh.coordinator.nodes</c>. The
/// <see cref="PeerMapBroadcaster"/>, a hosted service, hands itself to <see cref="ObserveMap"/> when it is
/// built, so the meter exists from the application's start, before the first join.
/// </summary>
internal sealed class CoordinatorMetrics : IDisposable
{
    private static readonly KeyValuePair<string, object?> Joined = new("result", "joined");
    private static readonly KeyValuePair<string, object?> Rejoined = new("result", "rejoined");
    private static readonly KeyValuePair<string, object?> Refused = new("result", "refused");

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _joins;
    private readonly UpDownCounter<long> _mapStreams;

    public CoordinatorMetrics(IMeterFactory? meterFactory = null)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeshMeters.Coordinator) ?? new Meter(MeshMeters.Coordinator);
        _joins = _meter.CreateCounter<long>("tunnelmesh.coordinator.joins", "{join}", "Join requests, by result (joined, rejoined, refused) and the reason of a refusal");
        _mapStreams = _meter.CreateUpDownCounter<long>("tunnelmesh.coordinator.map.streams", "{stream}", "Map streams (GET /map WebSockets) open now");
    }

    /// <summary>Publishes the broadcaster's state: the map version, the deltas serialized, the nodes in the map.</summary>
    public void ObserveMap(PeerMapBroadcaster broadcaster)
    {
        _meter.CreateObservableGauge(
            "tunnelmesh.coordinator.map.version",
            () => broadcaster.Current is { } map ? [new Measurement<long>(map.Version)] : Array.Empty<Measurement<long>>(),
            "{version}",
            "Version of the latest peer map sent to the streams");
        _meter.CreateObservableCounter("tunnelmesh.coordinator.map.deltas", () => broadcaster.DeltasSerialized, "{delta}", "Map deltas serialized (one per version step that changed a visible node, however many streams)");
        _meter.CreateObservableGauge(
            "tunnelmesh.coordinator.nodes",
            () => broadcaster.Current is { } map ? [new Measurement<long>(map.Nodes.Count)] : Array.Empty<Measurement<long>>(),
            "{node}",
            "Nodes in the latest peer map");
    }

    /// <summary>Counts an accepted join: a new node, or a known node key joining again.</summary>
    public void JoinAccepted(bool rejoined) => _joins.Add(1, rejoined ? Rejoined : Joined);

    /// <summary>Counts a refused join; <paramref name="reason"/> is one of the API's fixed refusal reasons ("bad node key", "KeyRevoked", …).</summary>
    public void JoinRefused(string reason) => _joins.Add(1, Refused, new KeyValuePair<string, object?>("reason", ReasonTag(reason)));

    public void MapStreamOpened() => _mapStreams.Add(1);

    public void MapStreamClosed() => _mapStreams.Add(-1);

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    /// <summary>"bad node key" and "KeyRevoked" as tag values: bad_node_key, key_revoked.</summary>
    internal static string ReasonTag(string reason)
    {
        var tag = new StringBuilder(reason.Length + 4);
        foreach (char c in reason)
        {
            if (c is ' ' or '-')
            {
                tag.Append('_');
            }
            else if (char.IsUpper(c))
            {
                if (tag.Length > 0 && tag[^1] != '_')
                {
                    tag.Append('_');
                }

                tag.Append(char.ToLowerInvariant(c));
            }
            else
            {
                tag.Append(c);
            }
        }

        return tag.ToString();
    }
}
