using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.EndToEnd;

namespace TunnelMesh.Net.Server.Tests.AspNetCore;

/// <summary>
/// ASP.NET Core (Kestrel) serving on a node's mesh address through <c>UseMesh</c>, against the real coordinator:
/// a caller on another node reaches it by name, the handler learns who called (WhoIs as a feature), a loopback
/// port is served at the same time, and stopping the host closes the mesh port and its connections.
/// </summary>
public sealed class UseMeshTests
{
    private const int WebPort = 8080;

    [Fact]
    public async Task A_web_app_on_node_A_answers_node_B_by_name_names_B_and_serves_a_loopback_port_at_the_same_time()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        (MeshNode a, MeshNode b) = await StartPairAsync(mesh, "web-a", "caller-b");

        await using WebApplication app = await MeshWeb.StartAsync(builder => builder.WebHost.UseMesh(o =>
        {
            o.Node = a;
            o.Port = WebPort;
            o.AlsoListen(MeshWeb.AnyLoopbackPort);
        }));

        // Over the mesh, by name: the handler sees B's identity, B's mesh address, and the mesh port.
        using HttpClient overMesh = b.CreateHttpClient();
        overMesh.Timeout = KestrelMesh.Deadline;
        WhoAmI who = (await overMesh.GetFromJsonAsync<WhoAmI>($"http://web-a:{WebPort}/whoami"))!;
        Assert.Equal("caller-b", who.Name);
        Assert.Equal(b.PublicKey.ToString(), who.Key);
        Assert.Equal(["tag:ci"], who.Tags!);
        Assert.Equal(b.Address.ToString(), who.RemoteIp);
        Assert.Equal(WebPort, who.LocalPort);
        Assert.StartsWith("mesh-", who.ConnectionId, StringComparison.Ordinal);

        // The same app on 127.0.0.1 at the same time: no mesh peer there.
        ICollection<string> addresses = MeshWeb.Addresses(app);
        Assert.Contains($"http://mesh:{a.Address}:{WebPort}", addresses);
        using var local = new HttpClient { BaseAddress = MeshWeb.LoopbackUrl(app), Timeout = KestrelMesh.Deadline };
        WhoAmI localWho = (await local.GetFromJsonAsync<WhoAmI>("/whoami"))!;
        Assert.Null(localWho.Name);
        Assert.Null(localWho.Key);
        Assert.Equal("127.0.0.1", localWho.RemoteIp);
        Assert.NotEqual(WebPort, localWho.LocalPort);
    }

    [Fact]
    public async Task A_POST_of_several_MiB_round_trips_and_keep_alive_reuses_one_mesh_connection()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        (MeshNode a, MeshNode b) = await StartPairAsync(mesh, "bulk-a", "bulk-b");
        await using WebApplication app = await MeshWeb.StartAsync(builder => builder.WebHost.UseMesh(a, WebPort));

        using HttpClient http = b.CreateHttpClient();
        http.Timeout = TimeSpan.FromSeconds(120);
        byte[] body = new byte[5 * 1024 * 1024 + 123];
        new Random(5).NextBytes(body);
        using (var content = new ByteArrayContent(body))
        {
            HttpResponseMessage posted = await http.PostAsync($"http://bulk-a:{WebPort}/hash", content);
            Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
            Assert.Equal($"{Convert.ToHexString(SHA256.HashData(body))}:{body.Length}", await posted.Content.ReadAsStringAsync());
        }

        // Sequential requests on one client: one connection carries them all (after the POST's, which it reuses too).
        var ids = new HashSet<string>();
        for (int i = 0; i < 40; i++)
        {
            WhoAmI who = (await http.GetFromJsonAsync<WhoAmI>($"http://bulk-a:{WebPort}/whoami"))!;
            Assert.Equal("bulk-b", who.Name);
            ids.Add(who.ConnectionId);
        }

        Assert.Single(ids);
    }

    [Fact]
    public async Task RequireMeshPeer_lets_a_peer_with_the_tag_through_and_answers_403_with_the_reason_otherwise()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        (MeshNode a, MeshNode b) = await StartPairAsync(mesh, "auth-a", "auth-b");
        await using WebApplication app = await MeshWeb.StartAsync(builder => builder.WebHost.UseMesh(o =>
        {
            o.Node = a;
            o.Port = WebPort;
            o.AlsoListen(MeshWeb.AnyLoopbackPort);
        }));

        using HttpClient overMesh = b.CreateHttpClient();
        overMesh.Timeout = KestrelMesh.Deadline;
        string url = $"http://auth-a:{WebPort}";
        Assert.Equal("ci", await overMesh.GetStringAsync(url + "/ci"));
        Assert.Equal("peer", await overMesh.GetStringAsync(url + "/any-peer"));
        Assert.Equal("group", await overMesh.GetStringAsync(url + "/group/x"));

        // B lacks tag:admin.
        HttpResponseMessage refused = await overMesh.GetAsync(url + "/admin");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        JsonElement problem = await refused.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(403, problem.GetProperty("status").GetInt32());
        string detail = problem.GetProperty("detail").GetString()!;
        Assert.Contains("auth-b", detail, StringComparison.Ordinal);
        Assert.Contains("tag:admin", detail, StringComparison.Ordinal);
        Assert.Contains("tag:ci", detail, StringComparison.Ordinal);

        // Not over the mesh at all: 403 for every RequireMeshPeer endpoint, even the tag-less one.
        using var local = new HttpClient { BaseAddress = MeshWeb.LoopbackUrl(app), Timeout = KestrelMesh.Deadline };
        foreach (string path in new[] { "/any-peer", "/ci", "/group/x" })
        {
            HttpResponseMessage r = await local.GetAsync(path);
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
            JsonElement p = await r.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Contains("did not come over the mesh", p.GetProperty("detail").GetString()!, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task StopAsync_closes_the_mesh_port_ends_idle_and_busy_connections_and_a_new_dial_is_refused()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        (MeshNode a, MeshNode b) = await StartPairAsync(mesh, "stop-a", "stop-b");
        var handlerAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handlerStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        WebApplication app = await MeshWeb.StartAsync(
            builder => builder.WebHost.UseMesh(a, WebPort),
            map => map.MapGet("/hang", async (HttpContext http) =>
            {
                using var registration = http.RequestAborted.Register(() => handlerAborted.TrySetResult());
                handlerStarted.TrySetResult();
                await handlerAborted.Task; // until Kestrel gives up on the request
            }),
            shutdownTimeout: TimeSpan.FromSeconds(1));
        await using (app)
        {
            using var cts = new CancellationTokenSource(KestrelMesh.Deadline);

            // An idle keep-alive connection: one request answered, the stream kept open.
            await using MeshTcpStream idle = await b.DialAsync("stop-a", WebPort, cts.Token);
            await idle.WriteAsync(Encoding.ASCII.GetBytes("GET /ok HTTP/1.1\r\nHost: stop-a\r\n\r\n"), cts.Token);
            string first = await ReadResponseHeadAsync(idle, cts.Token);
            Assert.StartsWith("HTTP/1.1 200", first, StringComparison.Ordinal);

            // A busy connection: a request whose handler does not return by itself.
            using HttpClient http = b.CreateHttpClient();
            Task<HttpResponseMessage> hanging = http.GetAsync($"http://stop-a:{WebPort}/hang", cts.Token);
            await handlerStarted.Task.WaitAsync(cts.Token);

            await app.StopAsync(cts.Token);

            await handlerAborted.Task.WaitAsync(cts.Token); // the busy request was aborted
            await Assert.ThrowsAnyAsync<Exception>(() => hanging); // and its client saw the connection end
            Assert.Equal(0, await ReadToEndOrErrorAsync(idle, cts.Token)); // the idle connection was closed
            SocketException refused = await Assert.ThrowsAsync<SocketException>(() => b.DialAsync("stop-a", WebPort, cts.Token));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }

        // The port is free again on the node.
        await using MeshTcpListener again = await a.ListenAsync(WebPort);
        await KestrelMesh.EchoAsync(b, "stop-a", again);
    }

    [Fact]
    public async Task Endpoints_given_in_code_replace_UseUrls_as_Kestrel_documents_and_AlsoListen_keeps_a_normal_port()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        (MeshNode a, MeshNode b) = await StartPairAsync(mesh, "urls-a", "urls-b");

        // UseUrls is ignored once UseMesh configured an endpoint: only the mesh is served.
        await using (WebApplication onlyMesh = await MeshWeb.StartAsync(builder =>
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.WebHost.UseMesh(a, WebPort);
        }))
        {
            Assert.Equal([$"http://mesh:{a.Address}:{WebPort}"], MeshWeb.Addresses(onlyMesh));
            using HttpClient http = b.CreateHttpClient();
            Assert.Equal("urls-b", (await http.GetFromJsonAsync<WhoAmI>($"http://urls-a:{WebPort}/whoami"))!.Name);
        }

        // ConfigureKestrel with ListenLocalhost-style calls next to ListenMesh: both are served.
        await using WebApplication both = await MeshWeb.StartAsync(builder =>
        {
            builder.WebHost.UseMeshTransport().ConfigureKestrel(k =>
            {
                k.Listen(MeshWeb.AnyLoopbackPort);
                k.ListenMesh(a, WebPort + 1);
            });
        });
        Assert.Equal(2, MeshWeb.Addresses(both).Count);
        using var local = new HttpClient { BaseAddress = MeshWeb.LoopbackUrl(both) };
        Assert.Null((await local.GetFromJsonAsync<WhoAmI>("/whoami"))!.Name);
        using HttpClient overMesh = b.CreateHttpClient();
        Assert.Equal("urls-b", (await overMesh.GetFromJsonAsync<WhoAmI>($"http://urls-a:{WebPort + 1}/whoami"))!.Name);
    }

    [Fact]
    public async Task ConfigureEndpoint_sets_the_protocols_and_an_HTTP2_stream_still_sees_the_mesh_peer()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        (MeshNode a, MeshNode b) = await StartPairAsync(mesh, "h2-a", "h2-b");
        await using WebApplication app = await MeshWeb.StartAsync(builder => builder.WebHost.UseMesh(o =>
        {
            o.Node = a;
            o.Port = WebPort;
            o.ConfigureEndpoint = listen => listen.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2;
        }));

        using HttpClient http = b.CreateHttpClient();
        http.Timeout = KestrelMesh.Deadline;
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://h2-a:{WebPort}/whoami")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        HttpResponseMessage response = await http.SendAsync(request);
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("h2-b", (await response.Content.ReadFromJsonAsync<WhoAmI>())!.Name);
    }

    /// <summary>Node A (key without tags) and node B (key with tag:ci), B seeing A.</summary>
    internal static async Task<(MeshNode A, MeshNode B)> StartPairAsync(KestrelMesh mesh, string nameA, string nameB)
    {
        string keyA = await mesh.CreateReusableKeyAsync();
        CreatedAuthKey keyB = await mesh.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true, Tags: ["tag:ci"]));
        MeshNode a = await mesh.StartNodeAsync(nameA, keyA);
        MeshNode b = await mesh.StartNodeAsync(nameB, keyB.Key);
        await KestrelMesh.PeerAsync(b, nameA);
        await KestrelMesh.PeerAsync(a, nameB);
        return (a, b);
    }

    /// <summary>Reads up to the end of a response's head and its Content-Length body.</summary>
    private static async Task<string> ReadResponseHeadAsync(MeshTcpStream stream, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        byte[] one = new byte[1];
        while (!text.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            Assert.Equal(1, await stream.ReadAsync(one, cancellationToken));
            text.Append((char)one[0]);
        }

        string head = text.ToString();
        string length = head.Split("\r\n").Single(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))["Content-Length:".Length..].Trim();
        byte[] body = new byte[int.Parse(length)];
        await stream.ReadExactlyAsync(body, cancellationToken);
        return head;
    }

    /// <summary>Reads until the end of the stream (0) or a reset (-1).</summary>
    private static async Task<int> ReadToEndOrErrorAsync(MeshTcpStream stream, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[4096];
        try
        {
            while (await stream.ReadAsync(buffer, cancellationToken) > 0)
            {
            }

            return 0;
        }
        catch (IOException)
        {
            return -1;
        }
    }
}
