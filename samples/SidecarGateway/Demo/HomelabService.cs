using System.Buffers;
using System.Net.WebSockets;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http.Features;

namespace SidecarGateway.Demo;

/// <summary>
/// The demo "homelab" web service that the gateway reaches through the mesh: a greeting, a header
/// echo, a streamed download of any size, an upload that is hashed as it arrives, and a WebSocket echo.
/// </summary>
public static class HomelabService
{
    /// <summary>Maps the service's endpoints on <paramref name="app"/> (which must use WebSockets for <c>/echo</c>).</summary>
    public static void Map(IEndpointRouteBuilder app, string name)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet("/", () => Results.Text($"hello from {name}: try /hello, /headers, /bytes/1048576, POST /sha256, ws /echo\n"));
        app.MapGet("/hello", (HttpContext context) => Results.Text($"hello from {name} (you came through {context.Request.Headers["X-Forwarded-Host"]}{context.Request.Headers["X-Forwarded-Prefix"]})\n"));
        app.MapGet("/headers", (HttpContext context) =>
            Results.Json(context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase)));
        app.MapGet("/bytes/{length:long}", StreamBytesAsync);
        app.MapPost("/sha256", HashUploadAsync);
        app.Map("/echo", EchoAsync);
    }

    /// <summary>
    /// <c>GET /bytes/{length}?seed=N&amp;chunked=true</c>: <see cref="DemoPayload"/> bytes, generated
    /// 64 KiB at a time as the client takes them; with Content-Length unless <c>chunked=true</c>.
    /// </summary>
    private static async Task StreamBytesAsync(HttpContext context, long length, ulong? seed, bool? chunked)
    {
        context.Response.ContentType = "application/octet-stream";
        if (chunked != true)
        {
            context.Response.ContentLength = length;
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            for (long offset = 0; offset < length;)
            {
                int n = (int)Math.Min(buffer.Length, length - offset);
                DemoPayload.Fill(buffer.AsSpan(0, n), offset, seed ?? 0);
                await context.Response.Body.WriteAsync(buffer.AsMemory(0, n), context.RequestAborted);
                offset += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary><c>POST /sha256</c>: reads the body as it arrives (no limit, not buffered) and answers its length and SHA-256.</summary>
    private static async Task HashUploadAsync(HttpContext context)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = null;
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        long length = 0;
        try
        {
            int n;
            while ((n = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                length += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        await context.Response.WriteAsJsonAsync(new UploadHash(length, Convert.ToHexStringLower(hash.GetHashAndReset()), context.Request.Headers.TransferEncoding.ToString()));
    }

    /// <summary><c>/echo</c>: a WebSocket that sends every message back as it came (text or binary) and answers the close handshake.</summary>
    private static async Task EchoAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            await context.Response.WriteAsync("this is a WebSocket echo: connect with ws://\n");
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync(context.WebSockets.WebSocketRequestedProtocols.FirstOrDefault());
        byte[] buffer = new byte[64 * 1024];
        while (true)
        {
            var received = await socket.ReceiveAsync(buffer, context.RequestAborted);
            if (received.MessageType == WebSocketMessageType.Close)
            {
                await socket.CloseOutputAsync(received.CloseStatus ?? WebSocketCloseStatus.NormalClosure, received.CloseStatusDescription, context.RequestAborted);
                return;
            }

            await socket.SendAsync(buffer.AsMemory(0, received.Count), received.MessageType, received.EndOfMessage, context.RequestAborted);
        }
    }
}

/// <summary>The answer of <c>POST /sha256</c>.</summary>
/// <param name="Length">Bytes received.</param>
/// <param name="Sha256">Their SHA-256, lower-case hex.</param>
/// <param name="TransferEncoding">The request's Transfer-Encoding as the service saw it ("chunked" or empty).</param>
public sealed record UploadHash(long Length, string Sha256, string TransferEncoding);
