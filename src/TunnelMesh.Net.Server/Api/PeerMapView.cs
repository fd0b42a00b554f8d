using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Api;

/// <summary>
/// What one map stream has sent its node: every other non-expired node's key and the version of
/// its record. Turns each newer <see cref="MapState"/> into the message that brings the node up to it.
/// </summary>
internal sealed class PeerMapView
{
    private readonly CoordinatorSettings _settings;
    private readonly long _selfId;
    private readonly Dictionary<string, long> _sent = new(StringComparer.Ordinal);

    public PeerMapView(CoordinatorSettings settings, long selfId)
    {
        _settings = settings;
        _selfId = selfId;
    }

    /// <summary>Whether the snapshot went out.</summary>
    public bool SnapshotSent { get; private set; }

    /// <summary>
    /// The first call: the snapshot of <paramref name="state"/>. Later calls: a delta of the nodes
    /// added or changed (by record version) and the keys removed or expired since; null when nothing changed for this node.
    /// </summary>
    public PeerMapMessage? Next(MapState state)
    {
        if (!SnapshotSent)
        {
            SnapshotSent = true;
            foreach (NodeRecord n in state.Nodes)
            {
                if (IsPeer(n))
                {
                    _sent[n.PublicKey] = n.Version;
                }
            }

            return _settings.Snapshot(state.Version, state.Nodes, _selfId);
        }

        var visible = new HashSet<string>(StringComparer.Ordinal);
        List<MeshNodeInfo>? upserted = null;
        foreach (NodeRecord n in state.Nodes)
        {
            if (!IsPeer(n))
            {
                continue;
            }

            visible.Add(n.PublicKey);
            if (!_sent.TryGetValue(n.PublicKey, out long v) || v != n.Version)
            {
                (upserted ??= []).Add(_settings.ToInfo(n));
                _sent[n.PublicKey] = n.Version;
            }
        }

        List<string>? removed = null;
        foreach (string key in _sent.Keys)
        {
            if (!visible.Contains(key))
            {
                (removed ??= []).Add(key);
            }
        }

        foreach (string key in removed ?? [])
        {
            _sent.Remove(key);
        }

        return upserted is null && removed is null
            ? null
            : new PeerMapMessage(PeerMapMessageType.Delta, state.Version, Upserted: upserted ?? [], Removed: removed ?? []);
    }

    private bool IsPeer(NodeRecord n) => n.Id != _selfId && n.Expired is null;
}
