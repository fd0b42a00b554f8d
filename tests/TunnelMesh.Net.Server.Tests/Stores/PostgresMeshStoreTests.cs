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

    protected override async Task<IMeshStore> CreateStoreAsync()
    {
        // Small pools: two instances per test must stay well under the server's max_connections.
        var cs = new NpgsqlConnectionStringBuilder(PostgresFactAttribute.RequireConnectionString()) { MaxPoolSize = 20 };
        var store = new PostgresMeshStore(cs.ConnectionString, schema);
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
        Assert.Equal(3L, await tables.ExecuteScalarAsync());
    }

    [PostgresFact]
    public void Bad_schema_names_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new PostgresMeshStore("Host=127.0.0.1", "Robert'); DROP TABLE nodes;--"));
        Assert.Throws<ArgumentException>(() => new PostgresMeshStore("Host=127.0.0.1", "1abc"));
    }
}
