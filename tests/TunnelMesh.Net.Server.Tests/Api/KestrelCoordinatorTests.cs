using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Api;

/// <summary>The coordinator in a plain minimal-API app on a real Kestrel (127.0.0.1, port 0): no UseWebSockets call needed.</summary>
public sealed class KestrelCoordinatorTests
{
    [Fact]
    public async Task A_minimal_api_app_on_kestrel_serves_join_and_the_map_websocket()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddMeshCoordinator(o =>
        {
            o.AdminCredential = CoordinatorHost.AdminCredential;
            o.StoreFactory = _ => new MemoryMeshStore();
            o.MaxRequestBodyBytes = 2048;
            o.StunEndpoints.Add("127.0.0.1:3478");
        });
        await using WebApplication app = builder.Build();
        app.MapMeshCoordinator("/mesh/v1");
        await app.StartAsync();
        var baseUri = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        using var http = new HttpClient { BaseAddress = baseUri };
        using var admin = new HttpClient { BaseAddress = baseUri };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", CoordinatorHost.AdminCredential);

        HttpResponseMessage created = await admin.PostAsJsonAsync("/mesh/v1/authkeys", new CreateAuthKeyRequest(Reusable: true), CoordinatorHost.Json);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        string key = (await created.Content.ReadFromJsonAsync<CreatedAuthKey>(CoordinatorHost.Json))!.Key;
        JoinResponse a = await JoinAsync(http, key, "a");
        JoinResponse b = await JoinAsync(http, key, "b");
        Assert.Equal(["127.0.0.1:3478"], b.Mesh.StunEndpoints);

        using var ws = new ClientWebSocket();
        ws.Options.SetRequestHeader("Authorization", "Bearer " + a.NodeToken);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await ws.ConnectAsync(new Uri($"ws://{baseUri.Authority}/mesh/v1/map"), cts.Token);
        var buffer = new byte[64 * 1024];
        WebSocketReceiveResult r = await ws.ReceiveAsync(buffer, cts.Token);
        Assert.True(r.EndOfMessage);
        PeerMapMessage snapshot = JsonSerializer.Deserialize<PeerMapMessage>(buffer.AsSpan(0, r.Count), CoordinatorHost.Json)!;
        Assert.Equal(PeerMapMessageType.Snapshot, snapshot.Type);
        Assert.Equal([b.Self.PublicKey], snapshot.Peers!.Select(p => p.PublicKey));
        Assert.Contains("\"type\":\"Snapshot\"", Encoding.UTF8.GetString(buffer, 0, r.Count), StringComparison.Ordinal);

        // A chunked body past the limit is cut off by the server's own limit and answered 413. The
        // request goes out in one write on a raw socket: HttpClient writes the body in pieces, and a
        // server that answers 413 and closes before the last piece makes its write fail (broken pipe)
        // before the response is read, which is a race of the client, not of the server.
        Assert.Equal("HTTP/1.1 413", await SendChunkedPastTheLimitAsync(baseUri, "/mesh/v1/join", 10_000, cts.Token));

        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);
        await app.StopAsync();
    }

    [Fact]
    public async Task A_node_that_stops_answering_pings_is_dropped_and_marked_offline()
    {
        var store = new MemoryMeshStore();
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddMeshCoordinator(o =>
        {
            o.AdminCredential = CoordinatorHost.AdminCredential;
            o.StoreFactory = _ => store;
            o.MapKeepAliveInterval = TimeSpan.FromMilliseconds(500);
        });
        await using WebApplication app = builder.Build();
        app.MapMeshCoordinator();
        await app.StartAsync();
        var baseUri = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        using var http = new HttpClient { BaseAddress = baseUri };
        using var admin = new HttpClient { BaseAddress = baseUri };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", CoordinatorHost.AdminCredential);
        string key = (await (await admin.PostAsJsonAsync("/api/v1/authkeys", new CreateAuthKeyRequest(), CoordinatorHost.Json)).Content.ReadFromJsonAsync<CreatedAuthKey>(CoordinatorHost.Json))!.Key;
        HttpResponseMessage joined = await http.PostAsJsonAsync("/api/v1/join", new JoinRequest(key, CoordinatorHost.NewNodeKey(), "quiet"), CoordinatorHost.Json);
        JoinResponse node = (await joined.Content.ReadFromJsonAsync<JoinResponse>(CoordinatorHost.Json))!;

        // A ClientWebSocket answers pings only while a receive is pending: this one never receives.
        using var ws = new ClientWebSocket();
        ws.Options.SetRequestHeader("Authorization", "Bearer " + node.NodeToken);
        await ws.ConnectAsync(new Uri($"ws://{baseUri.Authority}/api/v1/map"), CancellationToken.None);
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await store.GetNodeAsync(node.Self.Id))!.LastSeen is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "never marked online");
            await Task.Delay(10);
        }

        while ((await store.GetNodeAsync(node.Self.Id))!.Online)
        {
            Assert.True(DateTime.UtcNow < deadline, "a node that never answered pings stayed online");
            await Task.Delay(20);
        }

        await app.StopAsync();
    }

    private static async Task<string> SendChunkedPastTheLimitAsync(Uri baseUri, string path, int bodyBytes, CancellationToken cancellationToken)
    {
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(baseUri.Host, baseUri.Port, cancellationToken);
        var request = new MemoryStream();
        request.Write(Encoding.ASCII.GetBytes(
            $"POST {path} HTTP/1.1\r\nHost: {baseUri.Authority}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{bodyBytes:x}\r\n"));
        request.Write(new byte[bodyBytes]);
        request.Write("\r\n0\r\n\r\n"u8);
        System.Net.Sockets.NetworkStream stream = client.GetStream();
        await stream.WriteAsync(request.ToArray(), cancellationToken);
        var status = new byte[12];
        await stream.ReadExactlyAsync(status, cancellationToken);
        return Encoding.ASCII.GetString(status);
    }

    private static async Task<JoinResponse> JoinAsync(HttpClient http, string key, string name)
    {
        HttpResponseMessage r = await http.PostAsJsonAsync("/mesh/v1/join", new JoinRequest(key, CoordinatorHost.NewNodeKey(), name), CoordinatorHost.Json);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        return (await r.Content.ReadFromJsonAsync<JoinResponse>(CoordinatorHost.Json))!;
    }
}
