using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;

namespace SidecarGateway.Demo;

/// <summary>
/// What <c>--self-test</c> checks through a running gateway: health, path and host routing, a
/// streamed download and upload with their SHA-256, a WebSocket echo, and the 502 answers for an
/// unknown node and a refused port. Each check prints one line; the result is the number of failures.
/// </summary>
public static class SelfTest
{
    /// <summary>Runs the checks against <paramref name="gateway"/> (whose mesh has a node <paramref name="homelab"/>).</summary>
    public static async Task<int> RunAsync(Uri gateway, string homelab, TextWriter output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(gateway);
        ArgumentNullException.ThrowIfNull(output);
        using var http = new HttpClient { BaseAddress = gateway, Timeout = TimeSpan.FromSeconds(60) };
        int failures = 0;

        async Task Check(string what, Func<Task<string?>> check)
        {
            string? problem;
            try
            {
                problem = await check().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or WebSocketException or OperationCanceledException or InvalidOperationException)
            {
                problem = ex.GetType().Name + ": " + ex.Message;
            }

            await output.WriteLineAsync((problem is null ? "ok    " : "FAIL  ") + what + (problem is null ? "" : " -- " + problem)).ConfigureAwait(false);
            if (problem is not null)
            {
                failures++;
            }
        }

        await Check("GET /healthz is 200", async () =>
        {
            using var r = await http.GetAsync("/healthz", cancellationToken).ConfigureAwait(false);
            return r.StatusCode == HttpStatusCode.OK ? null : $"got {(int)r.StatusCode} {await r.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}";
        }).ConfigureAwait(false);

        await Check($"GET /{homelab}/hello answers from {homelab}", async () =>
        {
            string text = await http.GetStringAsync($"/{homelab}/hello", cancellationToken).ConfigureAwait(false);
            return text.Contains($"hello from {homelab}", StringComparison.Ordinal) ? null : $"got '{text.Trim()}'";
        }).ConfigureAwait(false);

        await Check($"Host: {homelab}.localhost maps to http://{homelab}:80", async () =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/hello");
            request.Headers.Host = homelab + ".localhost";
            using var r = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            string text = await r.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            return text.Contains($"hello from {homelab}", StringComparison.Ordinal) ? null : $"got {(int)r.StatusCode} '{text.Trim()}'";
        }).ConfigureAwait(false);

        const int size = 16 << 20;
        await Check($"GET /{homelab}/bytes/{size} streams {size} B with the right SHA-256", async () =>
        {
            using var r = await http.GetAsync($"/{homelab}/bytes/{size}?seed=7&chunked=true", HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            var body = await r.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                string got = Convert.ToHexStringLower(await SHA256.HashDataAsync(body, cancellationToken).ConfigureAwait(false));
                string want = Sha256OfPayload(size, 7);
                return got == want ? null : $"sha256 {got}, expected {want}";
            }
        }).ConfigureAwait(false);

        await Check($"POST /{homelab}/sha256 uploads {size} B streamed", async () =>
        {
            using var content = new StreamContent(new PayloadStream(size, 11));
            using var r = await http.PostAsync($"/{homelab}/sha256", content, cancellationToken).ConfigureAwait(false);
            var hash = await r.Content.ReadFromJsonAsync<UploadHash>(cancellationToken).ConfigureAwait(false);
            string want = Sha256OfPayload(size, 11);
            return hash is not null && hash.Length == size && hash.Sha256 == want ? null : $"got {hash}, expected {size} B {want}";
        }).ConfigureAwait(false);

        await Check($"WebSocket ws://…/{homelab}/echo echoes text and binary and closes", async () =>
        {
            using var ws = new ClientWebSocket();
            var url = new UriBuilder(gateway) { Scheme = "ws", Path = $"/{homelab}/echo" }.Uri;
            await ws.ConnectAsync(url, cancellationToken).ConfigureAwait(false);
            byte[] text = Encoding.UTF8.GetBytes("hello over the mesh");
            byte[] binary = RandomNumberGenerator.GetBytes(100_000);
            await ws.SendAsync(text, WebSocketMessageType.Text, true, cancellationToken).ConfigureAwait(false);
            var (type1, got1) = await ReceiveAsync(ws, cancellationToken).ConfigureAwait(false);
            await ws.SendAsync(binary, WebSocketMessageType.Binary, true, cancellationToken).ConfigureAwait(false);
            var (type2, got2) = await ReceiveAsync(ws, cancellationToken).ConfigureAwait(false);
            await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", cancellationToken).ConfigureAwait(false);
            return type1 == WebSocketMessageType.Text && got1.SequenceEqual(text) && type2 == WebSocketMessageType.Binary && got2.SequenceEqual(binary)
                && ws.State == WebSocketState.Closed && ws.CloseStatus == WebSocketCloseStatus.NormalClosure
                ? null
                : $"echo {type1}/{got1.Length} B, {type2}/{got2.Length} B, state {ws.State} {ws.CloseStatus}";
        }).ConfigureAwait(false);

        await Check("GET /nobody/ is 502 \"no node named 'nobody'\"", async () =>
        {
            using var r = await http.GetAsync("/nobody/", cancellationToken).ConfigureAwait(false);
            string body = await r.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            return r.StatusCode == HttpStatusCode.BadGateway && body.Contains("no node named 'nobody' in the mesh", StringComparison.Ordinal) ? null : $"got {(int)r.StatusCode} {body}";
        }).ConfigureAwait(false);

        await Check($"GET /{homelab}:81/ is 502 refused", async () =>
        {
            using var r = await http.GetAsync($"/{homelab}:81/", cancellationToken).ConfigureAwait(false);
            string body = await r.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            return r.StatusCode == HttpStatusCode.BadGateway && body.Contains("refused the connection", StringComparison.Ordinal) ? null : $"got {(int)r.StatusCode} {body}";
        }).ConfigureAwait(false);

        return failures;
    }

    /// <summary>The SHA-256 (lower-case hex) of the first <paramref name="length"/> bytes of <see cref="DemoPayload"/> with <paramref name="seed"/>.</summary>
    public static string Sha256OfPayload(long length, ulong seed)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = new byte[64 * 1024];
        for (long offset = 0; offset < length;)
        {
            int n = (int)Math.Min(buffer.Length, length - offset);
            DemoPayload.Fill(buffer.AsSpan(0, n), offset, seed);
            hash.AppendData(buffer, 0, n);
            offset += n;
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static async Task<(WebSocketMessageType Type, byte[] Data)> ReceiveAsync(ClientWebSocket ws, CancellationToken cancellationToken)
    {
        var data = new MemoryStream();
        byte[] buffer = new byte[16 * 1024];
        while (true)
        {
            var r = await ws.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
            data.Write(buffer, 0, r.Count);
            if (r.EndOfMessage)
            {
                return (r.MessageType, data.ToArray());
            }
        }
    }
}

/// <summary>A read-only stream of <see cref="DemoPayload"/> bytes (an upload body that is never held whole).</summary>
public sealed class PayloadStream(long length, ulong seed) : Stream
{
    private long _position;

    /// <inheritdoc/>
    public override bool CanRead => true;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override bool CanWrite => false;

    /// <inheritdoc/>
    public override long Length => length;

    /// <inheritdoc/>
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override int Read(Span<byte> buffer)
    {
        int n = (int)Math.Min(buffer.Length, length - _position);
        DemoPayload.Fill(buffer[..n], _position, seed);
        _position += n;
        return n;
    }

    /// <inheritdoc/>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer.AsSpan(offset, count)));

    /// <inheritdoc/>
    public override void Flush()
    {
    }

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
