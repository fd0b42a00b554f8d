using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;
using TunnelMesh.Net;

namespace SidecarGateway;

/// <summary>
/// An HTTP/1.1 upgrade (WebSocket, or any other protocol named in <c>Upgrade</c>) through the mesh:
/// dial the node, write the upgrade request, read the response head; on 101 complete the client's
/// upgrade with the upstream's 101 headers and copy bytes both ways until both ends are done; on any
/// other status pass that response through. The tunnelled protocol is never parsed.
/// </summary>
internal sealed class UpgradeTunnel
{
    private const int CopyBufferSize = 32 * 1024;

    private readonly MeshNode _node;
    private readonly GatewayOptions _options;
    private readonly ILogger _logger;

    public UpgradeTunnel(MeshNode node, GatewayOptions options, ILogger logger)
    {
        _node = node;
        _options = options;
        _logger = logger;
    }

    public async Task RunAsync(HttpContext context, IHttpUpgradeFeature upgrade, GatewayRoute route, MeshPeerStatus? peer, MeshGateway gateway)
    {
        var aborted = context.RequestAborted;
        MeshTcpStream upstream;
        try
        {
            IPAddress address = peer?.Addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                ?? (IPAddress.TryParse(route.Node, out var literal) ? literal : throw new SocketException((int)SocketError.HostNotFound));
            upstream = await _node.DialAsync(
                new IPEndPoint(address, route.Port),
                new MeshTcpOptions { NoDelay = true, ConnectTimeout = _options.ConnectTimeout },
                aborted).ConfigureAwait(false);
        }
        catch (Exception ex) when (aborted.IsCancellationRequested)
        {
            _ = ex;
            return;
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or TimeoutException)
        {
            var (status, detail) = GatewayErrors.Describe(ex, route, peer, _options.ConnectTimeout);
            await gateway.FailAsync(context, route, status, detail).ConfigureAwait(false);
            return;
        }

        await using (upstream.ConfigureAwait(false))
        {
            var reader = new HeadReader(upstream);
            ResponseHead head;
            try
            {
                await upstream.WriteAsync(RequestHead(context, route), aborted).ConfigureAwait(false);
                do
                {
                    head = await reader.ReadHeadAsync(aborted).ConfigureAwait(false);
                }
                while (head.Status is >= 100 and < 200 and not 101); // 100 Continue and friends: not for the client
            }
            catch (Exception ex) when (aborted.IsCancellationRequested)
            {
                _ = ex;
                return;
            }
            catch (Exception ex) when (ex is IOException or SocketException or InvalidDataException)
            {
                string detail = ex is InvalidDataException
                    ? $"{route.Node}:{route.Port} sent an invalid HTTP response to the upgrade: {ex.Message}"
                    : $"{route.Node}:{route.Port} closed the connection before it answered the upgrade";
                await gateway.FailAsync(context, route, StatusCodes.Status502BadGateway, detail).ConfigureAwait(false);
                return;
            }

            GatewayLog.Upgrade(_logger, context.Request.Headers.Upgrade.ToString(), route.Authority, route.PathAndQuery, head.Status);
            if (head.Status != StatusCodes.Status101SwitchingProtocols)
            {
                await PassThroughAsync(context, head, reader, aborted).ConfigureAwait(false);
                return;
            }

            foreach (var (name, value) in head.Headers)
            {
                if (!HopByHopHeaders.IsFixed(name) && !name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                {
                    context.Response.Headers.Append(name, value);
                }
            }

            context.Response.Headers.Upgrade = head.Header("Upgrade") ?? context.Request.Headers.Upgrade.ToString();
            var client = await upgrade.UpgradeAsync().ConfigureAwait(false);
            await using (client.ConfigureAwait(false))
            {
                await PumpAsync(client, upstream, reader.Leftover(), route, aborted).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The upgrade request as written upstream: the client's headers less hop-by-hop ones, plus Connection/Upgrade and X-Forwarded-*.</summary>
    private static byte[] RequestHead(HttpContext context, GatewayRoute route)
    {
        var request = context.Request;
        var text = new StringBuilder();
        text.Append(request.Method).Append(' ').Append(route.PathAndQuery).Append(" HTTP/1.1\r\n");
        text.Append("Host: ").Append(route.Authority).Append("\r\n");
        var listed = HopByHopHeaders.Listed(request.Headers.Connection);
        foreach (var (name, values) in request.Headers)
        {
            if (HopByHopHeaders.Drop(name, listed) || MeshGateway.IsSetByGateway(name))
            {
                continue;
            }

            foreach (string? value in values)
            {
                text.Append(name).Append(": ").Append(value).Append("\r\n");
            }
        }

        text.Append("Connection: Upgrade\r\n");
        text.Append("Upgrade: ").Append(request.Headers.Upgrade.ToString()).Append("\r\n");
        foreach (var (name, value) in MeshGateway.ForwardedHeaders(context, route))
        {
            text.Append(name).Append(": ").Append(value).Append("\r\n");
        }

        text.Append("\r\n");
        return Encoding.Latin1.GetBytes(text.ToString());
    }

    /// <summary>A non-101 answer to the upgrade: status, end-to-end headers, and the body as its framing says.</summary>
    private static async Task PassThroughAsync(HttpContext context, ResponseHead head, HeadReader reader, CancellationToken aborted)
    {
        context.Response.StatusCode = head.Status;
        var listed = HopByHopHeaders.Listed(new StringValues(head.Headers.Where(h => h.Name.Equals("Connection", StringComparison.OrdinalIgnoreCase)).Select(h => h.Value).ToArray()));
        foreach (var (name, value) in head.Headers)
        {
            if (!HopByHopHeaders.Drop(name, listed))
            {
                context.Response.Headers.Append(name, value);
            }
        }

        bool noBody = HttpMethods.IsHead(context.Request.Method) || head.Status is 204 or 304;
        try
        {
            if (noBody)
            {
                return;
            }

            if (head.Header("Transfer-Encoding") is { } te && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
            {
                await reader.CopyChunkedAsync(context.Response.Body, aborted).ConfigureAwait(false);
            }
            else if (head.Header("Content-Length") is { } cl && long.TryParse(cl, NumberStyles.None, CultureInfo.InvariantCulture, out long length))
            {
                await reader.CopyAsync(context.Response.Body, length, aborted).ConfigureAwait(false);
            }
            else
            {
                await reader.CopyAsync(context.Response.Body, long.MaxValue, aborted).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or OperationCanceledException)
        {
            context.Abort();
        }
    }

    /// <summary>
    /// Copies both ways. The client's end of input is passed on as a half-close (FIN) to the node; the
    /// node's end of output ends the tunnel (the client connection closes). Either side failing resets both.
    /// </summary>
    private async Task PumpAsync(Stream client, MeshTcpStream upstream, ReadOnlyMemory<byte> leftover, GatewayRoute route, CancellationToken aborted)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        long up = 0, down = 0;
        var toUpstream = Task.Run(async () =>
        {
            byte[] buffer = new byte[CopyBufferSize];
            int n;
            while ((n = await client.ReadAsync(buffer, stop.Token).ConfigureAwait(false)) > 0)
            {
                await upstream.WriteAsync(buffer.AsMemory(0, n), stop.Token).ConfigureAwait(false);
                up += n;
            }

            await upstream.ShutdownSendAsync(stop.Token).ConfigureAwait(false);
        }, stop.Token);
        var toClient = Task.Run(async () =>
        {
            if (!leftover.IsEmpty)
            {
                await client.WriteAsync(leftover, stop.Token).ConfigureAwait(false);
                await client.FlushAsync(stop.Token).ConfigureAwait(false);
                down += leftover.Length;
            }

            byte[] buffer = new byte[CopyBufferSize];
            int n;
            while ((n = await upstream.ReadAsync(buffer, stop.Token).ConfigureAwait(false)) > 0)
            {
                await client.WriteAsync(buffer.AsMemory(0, n), stop.Token).ConfigureAwait(false);
                await client.FlushAsync(stop.Token).ConfigureAwait(false);
                down += n;
            }
        }, stop.Token);

        var first = await Task.WhenAny(toUpstream, toClient).ConfigureAwait(false);
        if (first == toClient || first.IsFaulted || first.IsCanceled)
        {
            // The node is done (or something broke): nothing more can reach the client.
            await stop.CancelAsync().ConfigureAwait(false);
        }

        try
        {
            await Task.WhenAll(toUpstream, toClient).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Expected when either end goes away; the tunnel is closed either way.
        }

        if (toUpstream.IsFaulted || toClient.IsFaulted)
        {
            upstream.Abort();
        }

        GatewayLog.TunnelClosed(_logger, route.Authority, up, down);
    }
}
