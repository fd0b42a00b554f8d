using System.Collections.Concurrent;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Relay;

/// <summary>
/// A replica's routing table for relay frames: which replica each node is attached to (from the
/// store's attachment changes, applied in sequence order) and which replicas are alive (from their
/// heartbeats). A frame for a node goes to the replica it was last seen attaching to, as long as that
/// replica's registration has not expired; never back to this replica itself.
/// </summary>
internal sealed class ReplicaRoutes(string selfId)
{
    private readonly ConcurrentDictionary<RelayKey, Attachment> _attachments = new();
    private volatile Dictionary<string, ReplicaRecord> _replicas = new(StringComparer.Ordinal);
    private long _sequence;

    /// <summary>This replica's id.</summary>
    public string SelfId { get; } = selfId;

    /// <summary>The highest attachment sequence number applied.</summary>
    public long Sequence => Interlocked.Read(ref _sequence);

    /// <summary>The live replicas other than this one, as of the last heartbeat read.</summary>
    public IEnumerable<ReplicaRecord> OtherReplicas
    {
        get
        {
            foreach (var replica in _replicas.Values)
            {
                if (replica.Id != SelfId)
                {
                    yield return replica;
                }
            }
        }
    }

    /// <summary>Replaces the set of live replicas.</summary>
    public void SetReplicas(IEnumerable<ReplicaRecord> replicas)
    {
        var next = new Dictionary<string, ReplicaRecord>(StringComparer.Ordinal);
        foreach (var replica in replicas)
        {
            next[replica.Id] = replica;
        }

        _replicas = next;
    }

    /// <summary>Applies one attachment change; an older change than the one applied for the key is ignored.</summary>
    public void Apply(RelayKey key, string? replicaId, long sequence)
    {
        var next = new Attachment(replicaId, sequence);
        _attachments.AddOrUpdate(key, next, (_, current) => current.Sequence >= sequence ? current : next);
        long seen;
        while ((seen = Interlocked.Read(ref _sequence)) < sequence && Interlocked.CompareExchange(ref _sequence, sequence, seen) != seen)
        {
        }
    }

    /// <summary>Applies the changes read from the store.</summary>
    public void Apply(IEnumerable<AttachmentRecord> changes)
    {
        foreach (var change in changes)
        {
            if (change.PublicKey.Length == RelayKey.Length)
            {
                Apply(RelayKey.Read(change.PublicKey), change.ReplicaId, change.Sequence);
            }
        }
    }

    /// <summary>The keys recorded as attached to <paramref name="replicaId"/>.</summary>
    public IEnumerable<RelayKey> KeysAttachedTo(string replicaId)
    {
        foreach (var (key, attachment) in _attachments)
        {
            if (attachment.ReplicaId == replicaId)
            {
                yield return key;
            }
        }
    }

    /// <summary>The replica recorded for <paramref name="key"/> (this one included), or null.</summary>
    public string? AttachedTo(RelayKey key) => _attachments.TryGetValue(key, out var a) ? a.ReplicaId : null;

    /// <summary>
    /// The other replica holding <paramref name="key"/>, or null when it is attached nowhere, here, or
    /// to a replica that is unknown or whose registration expired before <paramref name="now"/>.
    /// </summary>
    public ReplicaRecord? Lookup(RelayKey key, DateTimeOffset now)
    {
        if (!_attachments.TryGetValue(key, out var attachment) || attachment.ReplicaId is not { } id || id == SelfId)
        {
            return null;
        }

        return _replicas.TryGetValue(id, out var replica) && replica.Expires > now ? replica : null;
    }

    private readonly record struct Attachment(string? ReplicaId, long Sequence);
}
