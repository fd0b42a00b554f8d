using Npgsql;

namespace TunnelMesh.Net.Server.Stores;

/// <summary>
/// The relay directory of <see cref="PostgresMeshStore"/>: tables <c>relay_replicas</c> (id, link URL,
/// expiry) and <c>relay_attachments</c> (public key, replica, sequence). Attachment changes take an
/// advisory transaction lock before they draw their sequence number, so numbers are visible in
/// order and a reader that asks for everything after the last number it saw misses nothing.
/// </summary>
public sealed partial class PostgresMeshStore : IRelayDirectory
{
    private const string RelayDdl = """
        CREATE TABLE IF NOT EXISTS relay_replicas (
            id text PRIMARY KEY,
            link_url text NOT NULL,
            expires timestamptz NOT NULL);
        CREATE SEQUENCE IF NOT EXISTS relay_attachment_seq;
        CREATE TABLE IF NOT EXISTS relay_attachments (
            public_key bytea PRIMARY KEY,
            replica_id text NULL,
            seq bigint NOT NULL);
        CREATE INDEX IF NOT EXISTS relay_attachments_seq ON relay_attachments (seq);
        """;

    async Task IRelayDirectory.HeartbeatAsync(string replicaId, Uri linkUrl, DateTimeOffset expires, CancellationToken cancellationToken)
    {
        using var cmd = dataSource.CreateCommand(
            "INSERT INTO relay_replicas (id, link_url, expires) VALUES (@id, @url, @expires) " +
            "ON CONFLICT (id) DO UPDATE SET link_url = EXCLUDED.link_url, expires = EXCLUDED.expires");
        cmd.Parameters.AddWithValue("id", replicaId);
        cmd.Parameters.AddWithValue("url", linkUrl.AbsoluteUri);
        cmd.Parameters.AddWithValue("expires", expires.ToUniversalTime());
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    async Task IRelayDirectory.RemoveReplicaAsync(string replicaId, CancellationToken cancellationToken)
    {
        using var cmd = dataSource.CreateCommand("DELETE FROM relay_replicas WHERE id = @id");
        cmd.Parameters.AddWithValue("id", replicaId);
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    async Task<IReadOnlyList<ReplicaRecord>> IRelayDirectory.ListReplicasAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        using var cmd = dataSource.CreateCommand("SELECT id, link_url, expires FROM relay_replicas WHERE expires > @now ORDER BY id");
        cmd.Parameters.AddWithValue("now", now.ToUniversalTime());
        var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var rScope = r.ConfigureAwait(false);
        var list = new List<ReplicaRecord>();
        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (Uri.TryCreate(r.GetString(1), UriKind.Absolute, out Uri? url))
            {
                list.Add(new ReplicaRecord(r.GetString(0), url, r.GetFieldValue<DateTimeOffset>(2)));
            }
        }

        return list;
    }

    async Task IRelayDirectory.SetAttachmentAsync(byte[] publicKey, string replicaId, bool attached, CancellationToken cancellationToken)
    {
        var c = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        var tx = await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var txScope = tx.ConfigureAwait(false);
        using (var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext(@name))", c, tx))
        {
            lockCmd.Parameters.AddWithValue("name", "tunnelmesh.relay:" + (schema ?? ""));
            await lockCmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        using (var cmd = new NpgsqlCommand(
            attached
                ? "INSERT INTO relay_attachments (public_key, replica_id, seq) VALUES (@key, @replica, nextval('relay_attachment_seq')) " +
                  "ON CONFLICT (public_key) DO UPDATE SET replica_id = EXCLUDED.replica_id, seq = EXCLUDED.seq"
                : "UPDATE relay_attachments SET replica_id = NULL, seq = nextval('relay_attachment_seq') WHERE public_key = @key AND replica_id = @replica",
            c,
            tx))
        {
            cmd.Parameters.AddWithValue("key", publicKey);
            cmd.Parameters.AddWithValue("replica", replicaId);
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    async Task<IReadOnlyList<AttachmentRecord>> IRelayDirectory.ReadAttachmentsAsync(long afterSequence, int limit, CancellationToken cancellationToken)
    {
        using var cmd = dataSource.CreateCommand("SELECT public_key, replica_id, seq FROM relay_attachments WHERE seq > @after ORDER BY seq LIMIT @limit");
        cmd.Parameters.AddWithValue("after", afterSequence);
        cmd.Parameters.AddWithValue("limit", limit);
        var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var rScope = r.ConfigureAwait(false);
        var list = new List<AttachmentRecord>();
        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(new AttachmentRecord(r.GetFieldValue<byte[]>(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetInt64(2)));
        }

        return list;
    }
}
