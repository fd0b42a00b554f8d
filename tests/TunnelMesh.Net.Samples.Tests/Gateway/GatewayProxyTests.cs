using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using SidecarGateway.Demo;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Samples.Tests.Gateway;

/// <summary>The gateway in front of a mesh node: streamed bodies (checked with the real curl), WebSocket, routing, errors, health.</summary>
public sealed class GatewayProxyTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private const long Size = 64L << 20;

    [ExternalFact("curl")]
    public async Task Curl_downloads_a_streamed_64_MiB_body_with_the_right_sha256()
    {
        string file = Path.GetTempFileName();
        string headers = Path.GetTempFileName();
        try
        {
            // chunked=true: the node sends no Content-Length, so the gateway can only pass it on as it comes.
            var result = await ProcessRunner.RunAsync("curl", [
                "-sS", "--fail", "--max-time", "180", "-o", file, "-D", headers, "-w", "%{http_code} %{size_download}",
                new Uri(fixture.Url, "/homelab/bytes/" + Size + "?seed=3&chunked=true").ToString(),
            ], TimeSpan.FromSeconds(200));
            Assert.True(result.ExitCode == 0, result.All);
            Assert.Equal($"200 {Size}", result.Stdout.Trim());
            string head = await File.ReadAllTextAsync(headers);
            Assert.Contains("transfer-encoding: chunked", head, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("content-length", head, StringComparison.OrdinalIgnoreCase);
            await using var stream = File.OpenRead(file);
            Assert.Equal(SelfTest.Sha256OfPayload(Size, 3), Convert.ToHexStringLower(await SHA256.HashDataAsync(stream)));
        }
        finally
        {
            File.Delete(file);
            File.Delete(headers);
        }
    }

    [ExternalFact("curl")]
    public async Task Curl_uploads_64_MiB_through_the_gateway_and_the_node_hashes_it()
    {
        string file = Path.GetTempFileName();
        try
        {
            await using (var output = File.Create(file))
            {
                await new PayloadStream(Size, 5).CopyToAsync(output);
            }

            var result = await ProcessRunner.RunAsync("curl", [
                "-sS", "--fail", "--max-time", "180", "-H", "Content-Type: application/octet-stream", "--data-binary", "@" + file,
                new Uri(fixture.Url, "/homelab/sha256").ToString(),
            ], TimeSpan.FromSeconds(200));
            Assert.True(result.ExitCode == 0, result.All);
            var hash = JsonSerializer.Deserialize<UploadHash>(result.Stdout, JsonSerializerOptions.Web)!;
            Assert.Equal(Size, hash.Length);
            Assert.Equal(SelfTest.Sha256OfPayload(Size, 5), hash.Sha256);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task A_chunked_upload_reaches_the_node_chunked_and_whole()
    {
        using var http = fixture.Client();
        using var content = new StreamContent(new PayloadStream(3_000_001, 9)); // no length: HttpClient sends it chunked
        using var response = await http.PostAsync("/homelab/sha256", content);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var hash = (await response.Content.ReadFromJsonAsync<UploadHash>())!;
        Assert.Equal(3_000_001, hash.Length);
        Assert.Equal(SelfTest.Sha256OfPayload(3_000_001, 9), hash.Sha256);
        Assert.Equal("chunked", hash.TransferEncoding);
    }

    [Fact]
    public async Task A_download_with_Content_Length_keeps_it()
    {
        using var http = fixture.Client();
        using var response = await http.GetAsync("/homelab/bytes/100000?seed=1");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(100_000, response.Content.Headers.ContentLength);
        byte[] body = await response.Content.ReadAsByteArrayAsync();
        byte[] expected = new byte[100_000];
        DemoPayload.Fill(expected, 0, 1);
        Assert.Equal(expected, body);
    }

    [Fact]
    public async Task A_WebSocket_echoes_text_and_binary_through_the_gateway_and_closes_cleanly()
    {
        using var cts = new CancellationTokenSource(GatewayFixture.Deadline);
        using var ws = new ClientWebSocket();
        ws.Options.AddSubProtocol("echo.v1");
        await ws.ConnectAsync(new UriBuilder(fixture.Url) { Scheme = "ws", Path = "/homelab/echo" }.Uri, cts.Token);
        Assert.Equal("echo.v1", ws.SubProtocol); // the node's 101 headers reached the client

        for (int i = 0; i < 5; i++)
        {
            byte[] text = Encoding.UTF8.GetBytes($"message {i} über das Mesh");
            await ws.SendAsync(text, WebSocketMessageType.Text, true, cts.Token);
            var (type, got) = await ReceiveAsync(ws, cts.Token);
            Assert.Equal(WebSocketMessageType.Text, type);
            Assert.Equal(text, got);
        }

        byte[] binary = RandomNumberGenerator.GetBytes(300_000);
        await ws.SendAsync(binary.AsMemory(0, 100_000), WebSocketMessageType.Binary, false, cts.Token); // one message in two frames
        await ws.SendAsync(binary.AsMemory(100_000), WebSocketMessageType.Binary, true, cts.Token);
        var (binaryType, binaryBack) = await ReceiveAsync(ws, cts.Token);
        Assert.Equal(WebSocketMessageType.Binary, binaryType);
        Assert.Equal(binary, binaryBack);

        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
        Assert.Equal(WebSocketState.Closed, ws.State);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, ws.CloseStatus);
        Assert.Equal("done", ws.CloseStatusDescription);
    }

    [Fact]
    public async Task A_plain_request_to_a_WebSocket_endpoint_passes_the_node_answer_through()
    {
        using var http = fixture.Client();
        using var response = await http.GetAsync("/homelab/echo");
        Assert.Equal(HttpStatusCode.UpgradeRequired, response.StatusCode);
        Assert.Contains("WebSocket echo", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task An_upgrade_the_node_refuses_is_passed_through_with_its_body()
    {
        // /hello is no WebSocket endpoint: the node answers the upgrade request with a plain 200.
        var (status, _, body) = await RawAsync("GET /homelab/hello HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n" +
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
        Assert.Equal(200, status);
        Assert.Contains("hello from homelab", body);
    }

    [Fact]
    public async Task An_unknown_node_gets_502_with_the_reason()
    {
        using var http = fixture.Client();
        using var response = await http.GetAsync("/ghost/some/path?x=1");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        string body = await response.Content.ReadAsStringAsync();
        Assert.Contains("no node named 'ghost' in the mesh", body);
        Assert.DoesNotContain(" at ", body); // no stack trace
    }

    [Fact]
    public async Task An_unknown_node_in_a_WebSocket_request_gets_502_too()
    {
        using var ws = new ClientWebSocket();
        using var http = new HttpClient();
        var error = await Assert.ThrowsAsync<WebSocketException>(() => ws.ConnectAsync(new UriBuilder(fixture.Url) { Scheme = "ws", Path = "/ghost/echo" }.Uri, CancellationToken.None));
        Assert.Contains("502", error.Message);
    }

    [Fact]
    public async Task A_port_where_nothing_listens_gets_502_refused()
    {
        using var http = fixture.Client();
        using var response = await http.GetAsync("/homelab:81/");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("homelab:81 refused the connection", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_configured_host_name_wins_over_path_mode()
    {
        using var http = fixture.Client();
        using var hello = new HttpRequestMessage(HttpMethod.Get, "/hello");
        hello.Headers.Host = "app.example";
        using var helloResponse = await http.SendAsync(hello);
        Assert.Equal(HttpStatusCode.OK, helloResponse.StatusCode);
        Assert.Contains("hello from homelab (you came through app.example)", await helloResponse.Content.ReadAsStringAsync());

        // The target's path is a prefix: bytes.example/16 is http://homelab.tunnelmesh/bytes/16, even though "16" is no node.
        using var bytes = new HttpRequestMessage(HttpMethod.Get, "/16?seed=2");
        bytes.Headers.Host = "bytes.example:8080";
        using var bytesResponse = await http.SendAsync(bytes);
        Assert.Equal(HttpStatusCode.OK, bytesResponse.StatusCode);
        byte[] expected = new byte[16];
        DemoPayload.Fill(expected, 0, 2);
        Assert.Equal(expected, await bytesResponse.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Hop_by_hop_headers_are_not_forwarded_and_forwarding_headers_are_added()
    {
        // Connection names X-Hop-Only alone: Kestrel keeps a Connection value as sent only when it holds
        // no close/keep-alive token (with one, it reduces the value to that token; see the README).
        using var http = fixture.Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/homelab/headers?q=1");
        request.Headers.Host = "public.example";
        request.Headers.Connection.Add("X-Hop-Only");
        request.Headers.TryAddWithoutValidation("X-Hop-Only", "secret");
        request.Headers.TryAddWithoutValidation("Keep-Alive", "timeout=5");
        request.Headers.TryAddWithoutValidation("TE", "trailers");
        request.Headers.TryAddWithoutValidation("Proxy-Authorization", "Basic Zm9vOmJhcg==");
        request.Headers.TryAddWithoutValidation("Proxy-Connection", "keep-alive");
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", "203.0.113.9");
        request.Headers.TryAddWithoutValidation("X-Forwarded-Prefix", "/spoofed");
        request.Headers.TryAddWithoutValidation("X-End-To-End", "kept");
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        string body = await response.Content.ReadAsStringAsync();
        var seen = new Dictionary<string, string>(JsonSerializer.Deserialize<Dictionary<string, string>>(body)!, StringComparer.OrdinalIgnoreCase);
        foreach (string hop in new[] { "X-Hop-Only", "Keep-Alive", "TE", "Proxy-Authorization", "Proxy-Connection" })
        {
            Assert.False(seen.ContainsKey(hop), $"{hop} was forwarded: {body}");
        }

        Assert.Equal("kept", seen["X-End-To-End"]);
        Assert.Equal("203.0.113.9, 127.0.0.1", seen["X-Forwarded-For"]);
        Assert.Equal("http", seen["X-Forwarded-Proto"]);
        Assert.Equal("public.example", seen["X-Forwarded-Host"]);
        Assert.Equal("/homelab", seen["X-Forwarded-Prefix"]);
        Assert.Equal("homelab", seen["Host"]);
    }

    [Fact]
    public async Task Healthz_is_200_while_the_node_is_up_and_the_index_lists_the_nodes()
    {
        using var http = fixture.Client();
        using var health = await http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("Healthy", await health.Content.ReadAsStringAsync());

        using var index = await http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, index.StatusCode);
        using var json = JsonDocument.Parse(await index.Content.ReadAsStringAsync());
        Assert.Equal("gateway", json.RootElement.GetProperty("gateway").GetString());
        Assert.Contains(json.RootElement.GetProperty("nodes").EnumerateArray(), n => n.GetProperty("name").GetString() == "homelab");
    }

    [Fact]
    public async Task A_bad_port_in_the_path_is_400()
    {
        using var http = fixture.Client();
        using var response = await http.GetAsync("/homelab:99999/");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("is not a port", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_client_that_leaves_mid_download_does_not_break_the_gateway()
    {
        using var http = fixture.Client();
        using (var response = await http.GetAsync("/homelab/bytes/1073741824", HttpCompletionOption.ResponseHeadersRead))
        {
            await using var body = await response.Content.ReadAsStreamAsync();
            byte[] some = new byte[1 << 20];
            await body.ReadExactlyAsync(some);
            byte[] expected = new byte[1 << 20];
            DemoPayload.Fill(expected, 0);
            Assert.Equal(expected, some);
        }

        // The 1 GiB request was cancelled upstream; the next one is served normally.
        Assert.Contains("hello from homelab", await http.GetStringAsync("/homelab/hello"));
    }

    /// <summary>Sends <paramref name="request"/> (which asks for Connection: close) on a new connection and reads the response to its end.</summary>
    private async Task<(int Status, string Head, string Body)> RawAsync(string request)
    {
        using var cts = new CancellationTokenSource(GatewayFixture.Deadline);
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, fixture.Url.Port, cts.Token);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), cts.Token);
        var data = new MemoryStream();
        await stream.CopyToAsync(data, cts.Token);
        string all = Encoding.UTF8.GetString(data.ToArray());
        int end = all.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(end >= 0, "no response head: " + all);
        string head = all[..end];
        string body = all[(end + 4)..];
        if (head.Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase))
        {
            var decoded = new StringBuilder();
            int at = 0;
            while (true)
            {
                int lineEnd = body.IndexOf("\r\n", at, StringComparison.Ordinal);
                int size = Convert.ToInt32(body[at..lineEnd], 16);
                if (size == 0)
                {
                    break;
                }

                decoded.Append(body, lineEnd + 2, size);
                at = lineEnd + 2 + size + 2;
            }

            body = decoded.ToString();
        }

        return (int.Parse(head.Split(' ')[1]), head, body);
    }

    private static async Task<(WebSocketMessageType Type, byte[] Data)> ReceiveAsync(ClientWebSocket ws, CancellationToken cancellationToken)
    {
        var data = new MemoryStream();
        byte[] buffer = new byte[16 * 1024];
        while (true)
        {
            var r = await ws.ReceiveAsync(buffer, cancellationToken);
            data.Write(buffer, 0, r.Count);
            if (r.EndOfMessage)
            {
                return (r.MessageType, data.ToArray());
            }
        }
    }
}
