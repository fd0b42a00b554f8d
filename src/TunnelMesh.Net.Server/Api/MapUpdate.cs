using System.Buffers;
using System.Text.Json;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Api;

/// <summary>
/// One version of the peer map as the <see cref="PeerMapBroadcaster"/> publishes it to every map
/// stream: the node list, the delta from the version published before it, already serialized
/// (once, shared by every stream), and the snapshot bytes, built at most once and only when a
/// stream needs one. Immutable once published, apart from that lazily built snapshot.
/// </summary>
internal sealed class MapUpdate
{
    private readonly Dictionary<long, int> _indexById;
    private readonly long[] _peerIds;
    private readonly byte[][] _peerJson;
    private readonly MessageBytes? _delta;
    private readonly Lock _snapshotGate = new();
    private MessageBytes? _snapshot;

    internal MapUpdate(
        long version,
        long previousVersion,
        IReadOnlyList<NodeRecord> nodes,
        long[] peerIds,
        byte[][] peerJson,
        MessageBytes? delta)
    {
        Version = version;
        PreviousVersion = previousVersion;
        Nodes = nodes;
        _peerIds = peerIds;
        _peerJson = peerJson;
        _delta = delta;
        _indexById = new Dictionary<long, int>(nodes.Count);
        for (int i = 0; i < nodes.Count; i++)
        {
            _indexById[nodes[i].Id] = i;
        }
    }

    /// <summary>The store's map version when the list was read (the list is at least that new).</summary>
    public long Version { get; }

    /// <summary>The version of the update published just before this one (its delta's base); -1 for the first.</summary>
    public long PreviousVersion { get; }

    /// <summary>Every node, expired ones too.</summary>
    public IReadOnlyList<NodeRecord> Nodes { get; }

    /// <summary>Entries (upserted nodes plus removed keys) in the delta from <see cref="PreviousVersion"/>.</summary>
    public int DeltaEntries => _delta?.Entries ?? 0;

    /// <summary>The node with this id, or null.</summary>
    public NodeRecord? Find(long id) => _indexById.TryGetValue(id, out int i) ? Nodes[i] : null;

    /// <summary>
    /// The delta from <see cref="PreviousVersion"/> as the node <paramref name="selfId"/> gets it: the shared
    /// bytes, or (only when the node itself is among the upserted) a copy without it; empty when nothing is left.
    /// </summary>
    public ReadOnlyMemory<byte> DeltaFor(long selfId) => _delta is null ? ReadOnlyMemory<byte>.Empty : _delta.Without(selfId);

    /// <summary>The snapshot of every other non-expired node for <paramref name="selfId"/> (the bytes are built once per update).</summary>
    public ReadOnlyMemory<byte> SnapshotFor(long selfId)
    {
        MessageBytes? snapshot = Volatile.Read(ref _snapshot);
        if (snapshot is null)
        {
            lock (_snapshotGate)
            {
                snapshot = _snapshot;
                if (snapshot is null)
                {
                    snapshot = MessageBytes.Write(PeerMapMessageType.Snapshot, Version, _peerIds, _peerJson, []);
                    Volatile.Write(ref _snapshot, snapshot);
                }
            }
        }

        return snapshot.Without(selfId);
    }

    /// <summary>
    /// A serialized <see cref="PeerMapMessage"/> and where each node's entry sits in it, so that one node's
    /// entry can be left out by copying the bytes around it.
    /// </summary>
    internal sealed class MessageBytes
    {
        private readonly byte[] _bytes;
        private readonly Dictionary<long, (int Start, int Length)> _ranges;

        private readonly bool _isDelta;

        private MessageBytes(byte[] bytes, Dictionary<long, (int Start, int Length)> ranges, int entries, bool isDelta)
        {
            _bytes = bytes;
            _ranges = ranges;
            Entries = entries;
            _isDelta = isDelta;
        }

        /// <summary>Node entries plus removed keys.</summary>
        public int Entries { get; }

        /// <summary>The message without the entry of node <paramref name="id"/>; the shared bytes when it has none; empty when that entry was all.</summary>
        public ReadOnlyMemory<byte> Without(long id)
        {
            if (!_ranges.TryGetValue(id, out (int Start, int Length) r))
            {
                return _bytes;
            }

            if (_isDelta && Entries == 1)
            {
                return ReadOnlyMemory<byte>.Empty;
            }

            byte[] copy = new byte[_bytes.Length - r.Length];
            _bytes.AsSpan(0, r.Start).CopyTo(copy);
            _bytes.AsSpan(r.Start + r.Length).CopyTo(copy.AsSpan(r.Start));
            return copy;
        }

        /// <summary>
        /// Writes the message as <see cref="JsonSerializer"/> would write the <see cref="PeerMapMessage"/>
        /// (same property order, names and escaping), with each node's JSON (already serialized) copied in.
        /// </summary>
        public static MessageBytes Write(PeerMapMessageType type, long version, long[] ids, byte[][] nodeJson, IReadOnlyList<string> removed)
        {
            JsonSerializerOptions options = ApiJson.Options;
            var buffer = new ArrayBufferWriter<byte>(64 + Total(nodeJson) + (removed.Count * 50));
            var ranges = new Dictionary<long, (int Start, int Length)>(ids.Length);
            bool snapshot = type == PeerMapMessageType.Snapshot;
            using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = options.Encoder, SkipValidation = true }))
            {
                writer.WriteStartObject();
                writer.WritePropertyName(Name(options, nameof(PeerMapMessage.Type)));
                JsonSerializer.Serialize(writer, type, options);
                writer.WriteNumber(Name(options, nameof(PeerMapMessage.Version)), version);
                if (!snapshot)
                {
                    writer.WriteNull(Name(options, nameof(PeerMapMessage.Peers)));
                }

                writer.WriteStartArray(Name(options, snapshot ? nameof(PeerMapMessage.Peers) : nameof(PeerMapMessage.Upserted)));
                for (int i = 0; i < ids.Length; i++)
                {
                    writer.Flush();
                    int start = (int)writer.BytesCommitted;
                    writer.WriteRawValue(nodeJson[i], skipInputValidation: true);
                    writer.Flush();
                    int length = (int)writer.BytesCommitted - start;

                    // The writer puts the separating comma before every entry but the first; leaving out the
                    // first entry must take the comma before the second with it.
                    ranges[ids[i]] = (start, i == 0 && ids.Length > 1 ? length + 1 : length);
                }

                writer.WriteEndArray();
                if (snapshot)
                {
                    writer.WriteNull(Name(options, nameof(PeerMapMessage.Upserted)));
                    writer.WriteNull(Name(options, nameof(PeerMapMessage.Removed)));
                }
                else
                {
                    writer.WriteStartArray(Name(options, nameof(PeerMapMessage.Removed)));
                    foreach (string key in removed)
                    {
                        writer.WriteStringValue(key);
                    }

                    writer.WriteEndArray();
                }

                writer.WriteEndObject();
            }

            return new MessageBytes(buffer.WrittenSpan.ToArray(), ranges, ids.Length + removed.Count, !snapshot);
        }

        private static string Name(JsonSerializerOptions options, string property) =>
            options.PropertyNamingPolicy?.ConvertName(property) ?? property;

        private static int Total(byte[][] nodeJson)
        {
            int total = 0;
            foreach (byte[] b in nodeJson)
            {
                total += b.Length + 1;
            }

            return total;
        }
    }
}

/// <summary>
/// Turns each node list the broadcaster reads into a <see cref="MapUpdate"/>: diffs it against the list
/// before (by public key and record version), serializes each new or changed node once (the JSON of
/// unchanged nodes is kept from earlier versions) and the delta once. O(nodes) per version plus
/// O(changed) serialization, whatever the number of streams. Used by one thread at a time.
/// </summary>
internal sealed class MapUpdateBuilder
{
    private readonly CoordinatorSettings _settings;
    private readonly Dictionary<string, Entry> _visible = new(StringComparer.Ordinal);
    private long _generation;
    private MapUpdate? _last;

    public MapUpdateBuilder(CoordinatorSettings settings) => _settings = settings;

    /// <summary>Nodes serialized so far (each new or changed node once).</summary>
    public long NodesSerialized { get; private set; }

    /// <summary>Deltas serialized so far (one per version that changed something visible).</summary>
    public long DeltasSerialized { get; private set; }

    /// <summary>The update for <paramref name="nodes"/> at <paramref name="version"/>, with the delta from the previous call's.</summary>
    public MapUpdate Next(long version, IReadOnlyList<NodeRecord> nodes)
    {
        long generation = ++_generation;
        var peerIds = new List<long>(nodes.Count);
        var peerJson = new List<byte[]>(nodes.Count);
        List<long>? upsertedIds = null;
        List<byte[]>? upsertedJson = null;
        foreach (NodeRecord n in nodes)
        {
            if (n.Expired is not null)
            {
                continue;
            }

            if (!_visible.TryGetValue(n.PublicKey, out Entry? e) || e.Version != n.Version || e.Id != n.Id)
            {
                e = new Entry(n.Id, n.Version, JsonSerializer.SerializeToUtf8Bytes(_settings.ToInfo(n), ApiJson.Options));
                NodesSerialized++;
                _visible[n.PublicKey] = e;
                (upsertedIds ??= []).Add(n.Id);
                (upsertedJson ??= []).Add(e.Json);
            }

            e.Generation = generation;
            peerIds.Add(n.Id);
            peerJson.Add(e.Json);
        }

        List<string>? removed = null;
        foreach ((string key, Entry e) in _visible)
        {
            if (e.Generation != generation)
            {
                (removed ??= []).Add(key);
            }
        }

        foreach (string key in removed ?? [])
        {
            _visible.Remove(key);
        }

        // The first update has no base: every stream starts from a snapshot.
        MapUpdate.MessageBytes? delta = null;
        if (_last is not null && (upsertedIds is not null || removed is not null))
        {
            delta = MapUpdate.MessageBytes.Write(
                PeerMapMessageType.Delta,
                version,
                upsertedIds?.ToArray() ?? [],
                upsertedJson?.ToArray() ?? [],
                removed ?? (IReadOnlyList<string>)[]);
            DeltasSerialized++;
        }

        var update = new MapUpdate(version, _last?.Version ?? -1, nodes, [.. peerIds], [.. peerJson], delta);
        _last = update;
        return update;
    }

    private sealed class Entry(long id, long version, byte[] json)
    {
        public long Id { get; } = id;

        public long Version { get; } = version;

        public byte[] Json { get; } = json;

        public long Generation { get; set; }
    }
}
