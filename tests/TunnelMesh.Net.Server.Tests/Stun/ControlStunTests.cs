using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Stun;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Stun;

/// <summary>A node in control mode asks the STUN server the coordinator advertises and reports what it learned.</summary>
public sealed class ControlStunTests
{
    [Fact]
    public async Task A_joined_node_learns_its_reflexive_endpoint_from_the_advertised_stun_server_and_reports_it()
    {
        string db = CoordinatorHost.TempSqlitePath();
        int stunPort = FreeUdpPort();
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddMeshCoordinator(o =>
        {
            o.AdminCredential = CoordinatorHost.AdminCredential;
            o.SqlitePath = db;
            o.StunEndpoints.Add($"127.0.0.1:{stunPort}");
        });
        builder.Services.AddMeshStun(o =>
        {
            o.BindAddress = IPAddress.Loopback;
            o.Port = stunPort;
        });
        await using WebApplication app = builder.Build();
        app.MapMeshCoordinator();
        await app.StartAsync();
        try
        {
            var url = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
            using var admin = new HttpClient { BaseAddress = url };
            admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", CoordinatorHost.AdminCredential);
            var created = await admin.PostAsJsonAsync("/api/v1/authkeys", new CreateAuthKeyRequest(), CoordinatorHost.Json);
            string key = (await created.Content.ReadFromJsonAsync<CreatedAuthKey>(CoordinatorHost.Json))!.Key;

            await using var node = new MeshNode(new MeshNodeOptions { ControlUrl = url, AuthKey = key, Hostname = "stunny", ListenAddress = IPAddress.Any });
            await node.StartAsync();
            var expected = new IPEndPoint(IPAddress.Loopback, node.ListenPort);

            // Bound to 0.0.0.0, the node reports no loopback endpoint of its own: only STUN can give 127.0.0.1:port.
            var responder = app.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<StunResponder>().Single();
            DateTime until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (node.ReflexiveEndpoint is null || responder.Answered == 0)
            {
                Assert.True(DateTime.UtcNow < until, "the node never asked the advertised STUN server");
                await Task.Delay(20);
            }

            Assert.Equal(expected, node.ReflexiveEndpoint);
            List<MeshNodeInfo> nodes;
            while (!(nodes = (await admin.GetFromJsonAsync<List<MeshNodeInfo>>("/api/v1/nodes", CoordinatorHost.Json))!).Single().Endpoints.Contains(expected.ToString()))
            {
                Assert.True(DateTime.UtcNow < until, $"the coordinator never got the reflexive endpoint; it has {string.Join(", ", nodes.Single().Endpoints)}");
                await Task.Delay(20);
            }
        }
        finally
        {
            await app.StopAsync();
            CoordinatorHost.DeleteSqlite(db);
        }
    }

    private static int FreeUdpPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
