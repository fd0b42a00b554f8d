using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Samples.Tests.Gateway;

/// <summary>
/// What forwarding with YARP brings beyond the hand-written proxy: HTTP/2 (h2c) to a node, response
/// trailers passed on, a 504 with the reason when a node accepts but never answers, WebSocket to an
/// HTTP/2-only node (extended CONNECT).
/// </summary>
public sealed class GatewayHttp2Tests(H2cNodeFixture fixture) : IClassFixture<H2cNodeFixture>
{
    [Fact]
    public async Task An_h2c_target_is_reached_over_HTTP2()
    {
        using var http = fixture.Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/protocol");
        request.Headers.Host = "h2.example";
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("HTTP/2", await response.Content.ReadAsStringAsync()); // what the node's Kestrel saw
        Assert.Equal(HttpVersion.Version11, response.Version); // the client side stays as the client asked
    }

    [Fact]
    public async Task The_nodes_response_trailers_reach_an_HTTP2_client()
    {
        using var http = fixture.TlsClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/trailers")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact, // HTTP/2 by ALPN to the gateway
        };
        request.Headers.Host = "h2.example";
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("body before the trailers", await response.Content.ReadAsStringAsync());
        Assert.True(response.TrailingHeaders.TryGetValues("x-checksum", out var checksum), response.TrailingHeaders.ToString());
        Assert.Equal(["c0ffee"], checksum);
    }

    [ExternalFact("curl")]
    public async Task Curl_over_HTTP2_sees_the_nodes_trailers()
    {
        var result = await ProcessRunner.RunAsync("curl", [
            "-sS", "--fail", "--max-time", "60", "--insecure", "--http2", "-H", "Host: h2.example", "-D", "-",
            new Uri(fixture.TlsUrl, "/trailers").ToString(),
        ], TimeSpan.FromSeconds(90));
        Assert.True(result.ExitCode == 0, result.All);
        Assert.StartsWith("HTTP/2 200", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("x-checksum: c0ffee", result.Stdout, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("body before the trailers", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_node_that_accepts_but_never_answers_gets_504_with_the_reason_after_the_activity_timeout()
    {
        using var http = fixture.Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/silent");
        request.Headers.Host = "h2.example";
        using var response = await http.SendAsync(request);
        string body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(body);
        Assert.Equal("h2:80 accepted the connection but sent no response within 5 s (Gateway:ActivityTimeout)", json.RootElement.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_WebSocket_reaches_an_HTTP2_only_node_through_extended_CONNECT()
    {
        using var cts = new CancellationTokenSource(GatewayFixture.Deadline);
        using var ws = new ClientWebSocket();
        ws.Options.SetRequestHeader("Host", "h2.example");
        await ws.ConnectAsync(new UriBuilder(fixture.Url) { Scheme = "ws", Path = "/echo" }.Uri, cts.Token);
        byte[] text = Encoding.UTF8.GetBytes("over HTTP/1.1 to the gateway, HTTP/2 to the node");
        await ws.SendAsync(text, WebSocketMessageType.Text, true, cts.Token);
        byte[] buffer = new byte[1024];
        var received = await ws.ReceiveAsync(buffer, cts.Token);
        Assert.Equal(WebSocketMessageType.Text, received.MessageType);
        Assert.True(received.EndOfMessage);
        Assert.Equal(text, buffer.AsSpan(0, received.Count).ToArray());
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, ws.CloseStatus);
    }
}
