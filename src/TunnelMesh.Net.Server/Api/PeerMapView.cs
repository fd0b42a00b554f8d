namespace TunnelMesh.Net.Server.Api;

/// <summary>What a map stream does with one update: send these bytes (possibly none), or close the stream.</summary>
/// <param name="Message">The serialized <see cref="TunnelMesh.Net.Control.PeerMapMessage"/> to send; empty for nothing.</param>
/// <param name="IsSnapshot">Whether <paramref name="Message"/> is a snapshot.</param>
/// <param name="CloseReason">Not null: close the stream with this reason (the node was deleted or expired).</param>
internal readonly record struct MapStep(ReadOnlyMemory<byte> Message, bool IsSnapshot, string? CloseReason);

/// <summary>
/// What one map stream has sent its node: only the map version it brought the node to (O(1) per
/// stream). The first update at or above the stream's floor (the version when it opened) sends a
/// snapshot; an update whose <see cref="MapUpdate.PreviousVersion"/> is the version sent sends its
/// shared delta; any other (the stream missed updates: it fell behind and its queue dropped some)
/// sends a fresh snapshot of the newest update instead.
/// </summary>
internal sealed class PeerMapView
{
    private readonly long _selfId;
    private readonly long _floor;
    private long _sent = -1;

    public PeerMapView(long selfId, long floor)
    {
        _selfId = selfId;
        _floor = floor;
    }

    /// <summary>Whether the snapshot went out.</summary>
    public bool SnapshotSent => _sent >= 0;

    /// <summary>The version the node was brought to; -1 before the snapshot.</summary>
    public long SentVersion => _sent;

    /// <summary>Snapshots sent after the first because the stream had fallen behind.</summary>
    public int Resyncs { get; private set; }

    /// <summary>
    /// The step for <paramref name="update"/>; <paramref name="latest"/> is the newest update published
    /// (no older than <paramref name="update"/>), the one a snapshot is taken of.
    /// </summary>
    public MapStep Next(MapUpdate update, MapUpdate latest)
    {
        if (update.Version <= _sent || (_sent < 0 && update.Version < _floor))
        {
            return default;
        }

        bool delta = _sent >= 0 && update.PreviousVersion == _sent;
        MapUpdate state = delta || latest.Version < update.Version ? update : latest;
        TunnelMesh.Net.Server.Stores.NodeRecord? self = state.Find(_selfId);
        if (self is null || self.Expired is not null)
        {
            return new MapStep(ReadOnlyMemory<byte>.Empty, false, self is null ? "node deleted" : "node expired");
        }

        if (delta)
        {
            _sent = state.Version;
            return new MapStep(state.DeltaFor(_selfId), false, null);
        }

        if (_sent >= 0)
        {
            Resyncs++;
        }

        _sent = state.Version;
        return new MapStep(state.SnapshotFor(_selfId), true, null);
    }
}
