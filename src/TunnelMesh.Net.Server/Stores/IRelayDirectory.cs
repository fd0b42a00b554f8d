namespace TunnelMesh.Net.Server.Stores;

/// <summary>
/// Where coordinator replicas find one another and learn which replica each relay client is attached
/// to (<see cref="Relay.ReplicaRelay"/>). Only the directory lives in the store; relay frames never
/// do. <see cref="PostgresMeshStore"/> implements it.
/// </summary>
internal interface IRelayDirectory
{
    /// <summary>Registers or refreshes a replica: its id, the URL of its replica-link endpoint, and when it expires without another heartbeat.</summary>
    Task HeartbeatAsync(string replicaId, Uri linkUrl, DateTimeOffset expires, CancellationToken cancellationToken);

    /// <summary>Removes a replica that is stopping.</summary>
    Task RemoveReplicaAsync(string replicaId, CancellationToken cancellationToken);

    /// <summary>The replicas whose registration has not expired at <paramref name="now"/>.</summary>
    Task<IReadOnlyList<ReplicaRecord>> ListReplicasAsync(DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Records that the node with <paramref name="publicKey"/> is attached to <paramref name="replicaId"/>
    /// (<paramref name="attached"/>), or that it left it (only if it is still recorded there: a newer
    /// attachment elsewhere wins). Each change gets the next sequence number; changes are numbered in
    /// the order they commit.
    /// </summary>
    Task SetAttachmentAsync(byte[] publicKey, string replicaId, bool attached, CancellationToken cancellationToken);

    /// <summary>Attachment changes with a sequence number above <paramref name="afterSequence"/>, in order, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<AttachmentRecord>> ReadAttachmentsAsync(long afterSequence, int limit, CancellationToken cancellationToken);
}

/// <summary>A live coordinator replica.</summary>
/// <param name="Id">Its random id, new at each start.</param>
/// <param name="LinkUrl">Where other replicas open their link to it (<c>ws://…/api/v1/relay/replica</c>).</param>
/// <param name="Expires">When it counts as gone unless it sends another heartbeat.</param>
internal sealed record ReplicaRecord(string Id, Uri LinkUrl, DateTimeOffset Expires);

/// <summary>Where a relay client is attached (null: nowhere), as of <paramref name="Sequence"/>.</summary>
/// <param name="PublicKey">The node's public key (32 bytes).</param>
/// <param name="ReplicaId">The replica holding its relay connection, or null.</param>
/// <param name="Sequence">The change's sequence number.</param>
internal sealed record AttachmentRecord(byte[] PublicKey, string? ReplicaId, long Sequence);
