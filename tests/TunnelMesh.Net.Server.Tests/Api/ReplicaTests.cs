using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Stores;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Api;

public sealed class ReplicaTests
{
    [Fact]
    public async Task A_change_made_through_one_coordinator_reaches_streams_held_by_another_on_the_same_store()
    {
        var store = new MemoryMeshStore();
        await using CoordinatorHost one = await CoordinatorHost.StartAsync(store: store);
        await using CoordinatorHost two = await CoordinatorHost.StartAsync(store: store);
        await ChangesCrossAsync(one, two);
    }

    [Fact]
    public async Task Two_coordinators_on_one_sqlite_file_through_separate_store_instances_see_each_others_changes()
    {
        string path = CoordinatorHost.TempSqlitePath();
        try
        {
            await using (CoordinatorHost one = await CoordinatorHost.StartAsync(store: new SqliteMeshStore(path)))
            await using (CoordinatorHost two = await CoordinatorHost.StartAsync(store: new SqliteMeshStore(path)))
            {
                await ChangesCrossAsync(one, two);
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            CoordinatorHost.DeleteSqlite(path);
        }
    }

    [Fact]
    public async Task The_default_sqlite_store_keeps_everything_across_a_restart()
    {
        string path = CoordinatorHost.TempSqlitePath();
        try
        {
            JoinResponse before;
            CreatedAuthKey key;
            await using (WebApplication app = await StartDefaultAsync(path))
            {
                using HttpClient admin = Admin(app);
                HttpResponseMessage created = await admin.PostAsJsonAsync("/api/v1/authkeys", new CreateAuthKeyRequest(Reusable: true), CoordinatorHost.Json);
                key = (await created.Content.ReadFromJsonAsync<CreatedAuthKey>(CoordinatorHost.Json))!;
                HttpResponseMessage joined = await app.GetTestServer().CreateClient().PostAsJsonAsync("/api/v1/join", new JoinRequest(key.Key, CoordinatorHost.NewNodeKey(), "survivor"), CoordinatorHost.Json);
                before = (await joined.Content.ReadFromJsonAsync<JoinResponse>(CoordinatorHost.Json))!;
                await app.StopAsync();
            }

            Assert.True(File.Exists(path));
            await using (WebApplication app = await StartDefaultAsync(path))
            {
                using HttpClient admin = Admin(app);
                List<MeshNodeInfo> nodes = (await admin.GetFromJsonAsync<List<MeshNodeInfo>>("/api/v1/nodes", CoordinatorHost.Json))!;
                Assert.Equal(before.Self.Addresses, nodes.Single().Addresses);
                var rejoin = new JoinRequest(null, before.Self.PublicKey, "survivor", NodeToken: before.NodeToken);
                HttpResponseMessage r = await app.GetTestServer().CreateClient().PostAsJsonAsync("/api/v1/join", rejoin, CoordinatorHost.Json);
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                Assert.Equal(before.Self.Addresses, (await r.Content.ReadFromJsonAsync<JoinResponse>(CoordinatorHost.Json))!.Self.Addresses);
                Assert.Equal(1, (await admin.GetFromJsonAsync<List<AuthKeyInfo>>("/api/v1/authkeys", CoordinatorHost.Json))!.Single().Uses);
                await app.StopAsync();
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            CoordinatorHost.DeleteSqlite(path);
        }
    }

    private static async Task<WebApplication> StartDefaultAsync(string path)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddMeshCoordinator(o =>
        {
            o.AdminCredential = CoordinatorHost.AdminCredential;
            o.SqlitePath = path;
        });
        WebApplication app = builder.Build();
        app.MapMeshCoordinator();
        await app.StartAsync();
        Assert.IsType<SqliteMeshStore>(app.Services.GetRequiredService<IMeshStore>());
        return app;
    }

    private static HttpClient Admin(WebApplication app)
    {
        HttpClient c = app.GetTestServer().CreateClient();
        c.DefaultRequestHeaders.Authorization = new("Bearer", CoordinatorHost.AdminCredential);
        return c;
    }

    private static async Task ChangesCrossAsync(CoordinatorHost one, CoordinatorHost two)
    {
        CreatedAuthKey key = await one.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        JoinResponse a = await one.JoinAsync(key.Key, "a");
        await using MapStream onTwo = await two.OpenMapAsync(a.NodeToken);
        await onTwo.WaitUntilAsync(m => m.Messages >= 1, "snapshot");

        JoinResponse b = await one.JoinAsync(key.Key, "b");
        await onTwo.WaitUntilAsync(m => m.Peers.ContainsKey(b.Self.PublicKey), "b, joined through the other coordinator");
        Assert.Equal(HttpStatusCode.OK, (await one.Admin.PatchAsJsonAsync($"/api/v1/nodes/{b.Self.Id}", new RenameNodeRequest("bee"), CoordinatorHost.Json)).StatusCode);
        await onTwo.WaitUntilAsync(m => m.Peers[b.Self.PublicKey].Name == "bee", "the rename");
        Assert.Equal(HttpStatusCode.NoContent, (await one.Admin.DeleteAsync($"/api/v1/nodes/{b.Self.Id}")).StatusCode);
        await onTwo.WaitUntilAsync(m => !m.Peers.ContainsKey(b.Self.PublicKey), "the deletion");
    }
}
