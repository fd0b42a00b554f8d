using System.Net;
using Microsoft.Data.Sqlite;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Tests.Stores;

/// <summary>The store contract on SQLite: a temp file per test, deleted afterwards.</summary>
public sealed class SqliteMeshStoreTests : MeshStoreContractTests
{
    private readonly string path = Path.Combine(Path.GetTempPath(), $"tunnelmesh-store-{Guid.NewGuid():N}.db");

    protected override async Task<IMeshStore> CreateStoreAsync()
    {
        var store = new SqliteMeshStore(path);
        await store.InitializeAsync();
        return store;
    }

    protected override Task DeleteStorageAsync()
    {
        foreach (string file in new[] { path, path + "-wal", path + "-shm" })
        {
            File.Delete(file);
        }

        return Task.CompletedTask;
    }

    [Fact]
    public async Task The_file_is_in_wal_mode_and_a_connection_string_opens_the_same_file()
    {
        await using var viaConnectionString = new SqliteMeshStore($"Data Source={path}");
        await viaConnectionString.InitializeAsync();
        Assert.Equal(await Store.GetVersionAsync(), await viaConnectionString.GetVersionAsync());

        await using var c = new SqliteConnection($"Data Source={path};Pooling=False");
        await c.OpenAsync();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string?)await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_change_through_the_same_instance_wakes_a_waiter_without_polling()
    {
        // No version poll within the test's deadline: only the in-process signal can wake the waiter.
        await using var store = new SqliteMeshStore(path, null, TimeSpan.FromHours(1));
        await store.InitializeAsync();
        var key = await store.CreateAuthKeyAsync(new NewAuthKey(new byte[32], true, false, [], null, DateTimeOffset.UnixEpoch, DateTimeOffset.MaxValue));
        var waiter = store.WaitForChangeAsync(0);
        Assert.False(waiter.IsCompleted);

        var joined = await store.JoinAsync(new JoinCommand(
            key.Id, Convert.ToBase64String(new byte[32]), "n", [], new byte[32], DateTimeOffset.UnixEpoch.AddDays(1),
            IPNetwork.Parse("100.64.0.0/10"), IPNetwork.Parse("fd7a:115c:a1e0::/48")));
        Assert.Equal(JoinStatus.Joined, joined.Status);
        Assert.Equal(1, await waiter.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void In_memory_and_read_only_databases_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new SqliteMeshStore("Data Source=:memory:"));
        Assert.Throws<ArgumentException>(() => new SqliteMeshStore($"Data Source={path};Mode=ReadOnly"));
        Assert.Throws<ArgumentException>(() => new SqliteMeshStore(" "));
    }
}
