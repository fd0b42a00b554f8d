using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Api;

/// <summary>Real MeshNodes (control mode) against the real coordinator on Kestrel (127.0.0.1:0) with the default SQLite store.</summary>
public sealed class CoordinatorEndToEndTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Three_nodes_join_with_one_auth_key_and_reach_each_other_by_name_over_tcp()
    {
        string db = CoordinatorHost.TempSqlitePath();
        var owned = new List<IAsyncDisposable>();
        try
        {
            WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            builder.Services.AddMeshCoordinator(o =>
            {
                o.AdminCredential = CoordinatorHost.AdminCredential;
                o.SqlitePath = db;
            });
            WebApplication app = builder.Build();
            owned.Add(app);
            app.MapMeshCoordinator();
            await app.StartAsync();
            var url = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());

            using var admin = new HttpClient { BaseAddress = url };
            admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", CoordinatorHost.AdminCredential);
            HttpResponseMessage created = await admin.PostAsJsonAsync("/api/v1/authkeys", new CreateAuthKeyRequest(Reusable: true), CoordinatorHost.Json);
            string key = (await created.Content.ReadFromJsonAsync<CreatedAuthKey>(CoordinatorHost.Json))!.Key;

            var nodes = new List<MeshNode>();
            for (int i = 0; i < 3; i++)
            {
                var node = new MeshNode(new MeshNodeOptions { ControlUrl = url, AuthKey = key, Hostname = "worker", ListenAddress = IPAddress.Loopback });
                owned.Insert(0, node);
                await node.StartAsync();
                nodes.Add(node);
            }

            Assert.Equal(["worker", "worker-2", "worker-3"], nodes.Select(n => n.GetStatus().Self.Name));
            Assert.Equal(3, nodes.Select(n => n.Address).Distinct().Count());
            foreach (MeshNode n in nodes)
            {
                await UntilAsync(() => n.GetStatus().Peers.Count == 2, $"{n.GetStatus().Self.Name} sees two peers");
            }

            await using MeshTcpListener listener = await nodes[2].ListenAsync(7100);
            using var cts = new CancellationTokenSource(Deadline);
            Task<Stream> accept = AcceptAsync(listener, cts.Token);
            await using Stream client = await nodes[0].DialAsync("worker-3.tunnelmesh", 7100, cts.Token);
            await using Stream server = await accept;
            byte[] hello = Encoding.ASCII.GetBytes("hello worker-3");
            await client.WriteAsync(hello, cts.Token);
            await client.FlushAsync(cts.Token);
            byte[] got = new byte[hello.Length];
            await server.ReadExactlyAsync(got, cts.Token);
            Assert.Equal(hello, got);

            // The coordinator sees all three holding a map stream.
            DateTime until = DateTime.UtcNow + Deadline;
            List<MeshNodeInfo> listed;
            while (!(listed = (await admin.GetFromJsonAsync<List<MeshNodeInfo>>("/api/v1/nodes", CoordinatorHost.Json))!).All(n => n.Online))
            {
                Assert.True(DateTime.UtcNow < until, "not all three online");
                await Task.Delay(20);
            }

            Assert.Equal(3, listed.Count);
        }
        finally
        {
            foreach (IAsyncDisposable d in owned)
            {
                await d.DisposeAsync();
            }

            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            CoordinatorHost.DeleteSqlite(db);
        }
    }

    private static async Task<Stream> AcceptAsync(MeshTcpListener listener, CancellationToken ct) => await listener.AcceptAsync(ct);

    private static async Task UntilAsync(Func<bool> condition, string what)
    {
        DateTime deadline = DateTime.UtcNow + Deadline;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting until " + what);
            await Task.Delay(20);
        }
    }
}
