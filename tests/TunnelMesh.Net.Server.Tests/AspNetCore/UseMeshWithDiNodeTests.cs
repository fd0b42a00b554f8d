using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using TunnelMesh.Net.Server.Tests.EndToEnd;

namespace TunnelMesh.Net.Server.Tests.AspNetCore;

/// <summary>
/// <c>UseMesh(port)</c> with the node from <c>services.AddMeshNode</c>: Kestrel binds while the web host starts,
/// which may be before the node's hosted service ran, so the transport starts the node itself; keyed nodes by name.
/// </summary>
public sealed class UseMeshWithDiNodeTests
{
    [Fact]
    public async Task UseMesh_serves_on_the_unkeyed_DI_node_which_starts_with_the_web_host()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        string key = await mesh.CreateReusableKeyAsync();
        MeshNode b = await mesh.StartNodeAsync("di-caller", key);

        await using WebApplication app = await MeshWeb.StartAsync(builder =>
        {
            builder.Services.AddMeshNode(o => Configure(o, mesh, "di-web", key));
            builder.WebHost.UseMesh(8081);
        });

        MeshNode served = app.Services.GetRequiredService<MeshNode>();
        Assert.True(served.IsRunning);
        Assert.Equal([$"http://mesh:default:8081"], MeshWeb.Addresses(app));
        await KestrelMesh.PeerAsync(b, "di-web");
        using HttpClient http = b.CreateHttpClient();
        http.Timeout = KestrelMesh.Deadline;
        WhoAmI who = (await http.GetFromJsonAsync<WhoAmI>("http://di-web:8081/whoami"))!;
        Assert.Equal("di-caller", who.Name);
        Assert.Equal(b.PublicKey.ToString(), who.Key);
        Assert.Empty(who.Tags!);
    }

    [Fact]
    public async Task UseMesh_with_NodeName_serves_on_that_keyed_node_and_not_on_the_other()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        string key = await mesh.CreateReusableKeyAsync();
        MeshNode b = await mesh.StartNodeAsync("keyed-caller", key);

        await using WebApplication app = await MeshWeb.StartAsync(builder =>
        {
            builder.Services.AddMeshNode("public", o => Configure(o, mesh, "keyed-public", key));
            builder.Services.AddMeshNode("private", o => Configure(o, mesh, "keyed-private", key));
            builder.WebHost.UseMesh(o =>
            {
                o.NodeName = "public";
                o.Port = 8082;
                o.AlsoListen(MeshWeb.AnyLoopbackPort);
            });
        });

        Assert.Contains("http://mesh:public:8082", MeshWeb.Addresses(app));
        await KestrelMesh.PeerAsync(b, "keyed-public");
        await KestrelMesh.PeerAsync(b, "keyed-private");
        using HttpClient http = b.CreateHttpClient();
        http.Timeout = KestrelMesh.Deadline;
        Assert.Equal("keyed-caller", (await http.GetFromJsonAsync<WhoAmI>("http://keyed-public:8082/whoami"))!.Name);
        HttpRequestException refused = await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync("http://keyed-private:8082/whoami"));
        Assert.Equal(HttpRequestError.ConnectionError, refused.HttpRequestError);
        Assert.Equal(System.Net.Sockets.SocketError.ConnectionRefused, Assert.IsType<System.Net.Sockets.SocketException>(refused.InnerException).SocketErrorCode);

        using var local = new HttpClient { BaseAddress = MeshWeb.LoopbackUrl(app), Timeout = KestrelMesh.Deadline };
        Assert.Equal(HttpStatusCode.OK, (await local.GetAsync("/whoami")).StatusCode);
    }

    private static void Configure(MeshNodeOptions o, KestrelMesh mesh, string name, string key)
    {
        o.ControlUrl = mesh.Url;
        o.AuthKey = key;
        o.Hostname = name;
        o.StateDirectory = mesh.StateDirectory(name);
        o.ListenAddress = IPAddress.Loopback;
    }
}
