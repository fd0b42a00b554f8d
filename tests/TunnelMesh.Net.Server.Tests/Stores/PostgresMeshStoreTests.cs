using System.Net;
using Npgsql;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Tests.Stores;

/// <summary>
/// The store contract on PostgreSQL (TM_TEST_POSTGRES): a fresh schema per test, dropped afterwards.
/// Two store instances on the schema stand for two coordinator replicas.
/// </summary>
[PostgresFact]
public sealed class PostgresMeshStoreTests : MeshStoreContractTests
{
    private readonly string schema = $"tm_test_{Guid.NewGuid():N}"[..24];

    protected override Task<IMeshStore> CreateStoreAsync() => CreateStoreAsync(null);

    private async Task<IMeshStore> CreateStoreAsync(TimeSpan? pollInterval)
    {
        // Small pools: two instances per test must stay well under the server's max_connections.
        var cs = new NpgsqlConnectionStringBuilder(PostgresFactAttribute.RequireConnectionString()) { MaxPoolSize = 20 }.ConnectionString;
        var store = pollInterval is { } p ? new PostgresMeshStore(cs, schema, null, p) : new PostgresMeshStore(cs, schema);
        await store.InitializeAsync();
        return store;
    }

    protected override async Task DeleteStorageAsync()
    {
        if (PostgresFactAttribute.ConnectionString is not { } cs)
        {
            return;
        }

        await using var c = new NpgsqlConnection(cs);
        await c.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", c);
        await drop.ExecuteNonQueryAsync();
    }

    [PostgresFact]
    public async Task Replicas_starting_at_once_create_the_schema_once()
    {
        var starting = Enumerable.Range(0, 4).Select(_ => Task.Run(() => OpenAsync())).ToArray();
        var replicas = await Task.WhenAll(starting);
        Assert.All(await Task.WhenAll(replicas.Select(r => r.GetVersionAsync())), v => Assert.Equal(0, v));

        await using var c = new NpgsqlConnection(PostgresFactAttribute.RequireConnectionString());
        await c.OpenAsync();
        await using var tables = new NpgsqlCommand("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = @s", c);
        tables.Parameters.AddWithValue("s", schema);
        Assert.Equal(5L, await tables.ExecuteScalarAsync()); // auth_keys, nodes, mesh_state, relay_replicas, relay_attachments
    }

    [PostgresFact]
    public async Task A_change_on_another_replica_wakes_a_waiter_through_notify_alone()
    {
        // No version poll within the test's deadline: only LISTEN/NOTIFY can wake the waiter.
        await using var listening = await CreateStoreAsync(TimeSpan.FromHours(1));
        var key = await Store.CreateAuthKeyAsync(new NewAuthKey(new byte[32], true, false, [], null, DateTimeOffset.UnixEpoch, DateTimeOffset.MaxValue));
        var waiter = listening.WaitForChangeAsync(0);
        await ((PostgresMeshStore)listening).Listening.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(waiter.IsCompleted);

        var joined = await Store.JoinAsync(new JoinCommand(
            key.Id, Convert.ToBase64String(new byte[32]), "n", [], new byte[32], DateTimeOffset.UnixEpoch.AddDays(1),
            IPNetwork.Parse("100.64.0.0/10"), IPNetwork.Parse("fd7a:115c:a1e0::/48")));
        Assert.Equal(JoinStatus.Joined, joined.Status);
        Assert.Equal(1, await waiter.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [PostgresFact]
    public void Bad_schema_names_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new PostgresMeshStore("Host=127.0.0.1", "Robert'); DROP TABLE nodes;--"));
        Assert.Throws<ArgumentException>(() => new PostgresMeshStore("Host=127.0.0.1", "1abc"));
    }
}
