using System.Security.Cryptography;
using Npgsql;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Tests.Stores;

/// <summary>The relay directory of the PostgreSQL store (TM_TEST_POSTGRES), in a schema of its own.</summary>
public sealed class PostgresRelayDirectoryTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly string _schema = $"tm_dir_{Guid.NewGuid():N}"[..24];
    private PostgresMeshStore? _one;
    private PostgresMeshStore? _two;

    private IRelayDirectory One => _one!;

    private IRelayDirectory Two => _two!;

    public async Task InitializeAsync()
    {
        if (PostgresFactAttribute.ConnectionString is not { } cs)
        {
            return;
        }

        cs = new NpgsqlConnectionStringBuilder(cs) { MaxPoolSize = 10 }.ConnectionString;
        _one = new PostgresMeshStore(cs, _schema);
        _two = new PostgresMeshStore(cs, _schema);
        await _one.InitializeAsync();
        await _two.InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        if (_one is null || PostgresFactAttribute.ConnectionString is not { } cs)
        {
            return;
        }

        await _one.DisposeAsync();
        await _two!.DisposeAsync();
        await using var c = new NpgsqlConnection(cs);
        await c.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{_schema}\" CASCADE", c);
        await drop.ExecuteNonQueryAsync();
    }

    [PostgresFact]
    public async Task Replicas_are_listed_until_their_registration_expires_and_after_removal_not_at_all()
    {
        await One.HeartbeatAsync("r1", new Uri("ws://192.0.2.1/api/v1/relay/replica"), Now.AddSeconds(15), default);
        await Two.HeartbeatAsync("r2", new Uri("ws://192.0.2.2/api/v1/relay/replica"), Now.AddSeconds(30), default);
        Assert.Equal(["r1", "r2"], (await One.ListReplicasAsync(Now, default)).Select(r => r.Id));
        Assert.Equal(["r2"], (await One.ListReplicasAsync(Now.AddSeconds(15), default)).Select(r => r.Id));
        Assert.Equal(new Uri("ws://192.0.2.2/api/v1/relay/replica"), (await Two.ListReplicasAsync(Now, default))[1].LinkUrl);

        await One.HeartbeatAsync("r1", new Uri("ws://192.0.2.1/api/v1/relay/replica"), Now.AddSeconds(60), default);
        Assert.Equal(["r1", "r2"], (await Two.ListReplicasAsync(Now.AddSeconds(20), default)).Select(r => r.Id));
        await Two.RemoveReplicaAsync("r2", default);
        Assert.Equal(["r1"], (await One.ListReplicasAsync(Now, default)).Select(r => r.Id));
    }

    [PostgresFact]
    public async Task Attachment_changes_come_back_in_order_and_a_stale_detach_does_not_undo_a_move()
    {
        byte[] key = RandomNumberGenerator.GetBytes(32), other = RandomNumberGenerator.GetBytes(32);
        await One.SetAttachmentAsync(key, "r1", attached: true, default);
        await One.SetAttachmentAsync(other, "r1", attached: true, default);
        await Two.SetAttachmentAsync(key, "r2", attached: true, default); // the node moved to r2
        await One.SetAttachmentAsync(key, "r1", attached: false, default); // r1 sees its old connection close: no change

        IReadOnlyList<AttachmentRecord> all = await Two.ReadAttachmentsAsync(0, 100, default);
        Assert.Equal(2, all.Count);
        Assert.True(all[0].Sequence < all[1].Sequence);
        Assert.Equal(other, all[0].PublicKey);
        Assert.Equal("r2", all[1].ReplicaId);

        // Reading on from the last number sees only what came after; a detach by the holder records "nowhere".
        await Two.SetAttachmentAsync(key, "r2", attached: false, default);
        IReadOnlyList<AttachmentRecord> next = await One.ReadAttachmentsAsync(all[1].Sequence, 100, default);
        Assert.Equal(key, Assert.Single(next).PublicKey);
        Assert.Null(next[0].ReplicaId);

        // Batches are bounded.
        Assert.Single(await One.ReadAttachmentsAsync(0, 1, default));
    }
}
