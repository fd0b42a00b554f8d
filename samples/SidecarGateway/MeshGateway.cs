using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using TunnelMesh.Net;

namespace SidecarGateway;

/// <summary>
/// The reverse proxy from public HTTP to services on mesh nodes. Requests are routed by
/// <see cref="GatewayRouter"/> (a configured host name first, then <c>/&lt;node&gt;[:port]/…</c>),
/// forwarded with their bodies streamed both ways, WebSocket (any HTTP/1.1 upgrade) tunnelled as
/// opaque bytes by <see cref="UpgradeTunnel"/>, and failures answered with a 502/504 problem that
/// says why.
/// </summary>
public sealed class MeshGateway : IDisposable
{
    private const int CopyBufferSize = 64 * 1024;

    private readonly MeshNode _node;
    private readonly GatewayOptions _options;
    private readonly ILogger<MeshGateway> _logger;
    private readonly HttpMessageInvoker _invoker;
    private readonly UpgradeTunnel _tunnel;

    /// <summary>Creates the gateway for <paramref name="node"/>.</summary>
    public MeshGateway(MeshNode node, IOptions<GatewayOptions> options, ILogger<MeshGateway> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _node = node ?? throw new ArgumentNullException(nameof(node));
        _options = options.Value;
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        var handler = node.CreateHttpMessageHandler();
        handler.AllowAutoRedirect = false;
        handler.AutomaticDecompression = DecompressionMethods.None;
        handler.UseCookies = false;
        handler.ConnectTimeout = _options.ConnectTimeout;
        handler.ActivityHeadersPropagator = null; // forward the client's trace headers as they are
        _invoker = new HttpMessageInvoker(handler, disposeHandler: true);
        _tunnel = new UpgradeTunnel(node, _options, logger);
    }

    /// <summary>Handles one request (the endpoint that <c>MapMeshGateway</c> maps).</summary>
    public async Task HandleAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        string rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget is { Length: > 0 } raw && raw[0] == '/'
            ? raw
            : context.Request.Path.ToUriComponent() + context.Request.QueryString.ToUriComponent();
        switch (GatewayRouter.Route(_options, context.Request.Host.Host, rawTarget, out var route, out string? error))
        {
            case GatewayRouteKind.Index:
                await WriteIndexAsync(context).ConfigureAwait(false);
                return;
            case GatewayRouteKind.NotFound:
                await ProblemAsync(context, StatusCodes.Status404NotFound, "Not Found", $"no route for host '{context.Request.Host.Host}'").ConfigureAwait(false);
                return;
            case GatewayRouteKind.BadRequest:
                GatewayLog.BadRoute(_logger, error!);
                await ProblemAsync(context, StatusCodes.Status400BadRequest, "Bad Request", error!).ConfigureAwait(false);
                return;
        }

        // A name the mesh does not know gets its clear answer before anything is dialled.
        var status = _node.GetStatus();
        MeshPeerStatus? peer = status.FindPeer(route!.Node);
        if (peer is null && !IPAddress.TryParse(route.Node, out _))
        {
            await FailAsync(context, route, StatusCodes.Status502BadGateway, GatewayErrors.NoSuchNode(route.Node)).ConfigureAwait(false);
            return;
        }

        if (context.Features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true } upgrade && context.Request.Headers.Upgrade.Count > 0)
        {
            await _tunnel.RunAsync(context, upgrade, route, peer, this).ConfigureAwait(false);
            return;
        }

        await ProxyAsync(context, route, peer).ConfigureAwait(false);
    }

    private async Task ProxyAsync(HttpContext context, GatewayRoute route, MeshPeerStatus? peer)
    {
        var request = context.Request;
        var aborted = context.RequestAborted;
        using var upstream = new HttpRequestMessage(new HttpMethod(request.Method), new Uri("http://" + route.Authority + route.PathAndQuery))
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
        };

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = _options.MaxRequestBodySize;
        }

        if (context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? request.ContentLength > 0)
        {
            // Streamed: StreamContent reads the client's body as the upstream connection takes it.
            // With Content-Length the length is forwarded; without it the upstream request is chunked.
            upstream.Content = new StreamContent(request.Body, CopyBufferSize);
        }

        CopyRequestHeaders(context, upstream, route);
        HttpResponseMessage response;
        try
        {
            response = await _invoker.SendAsync(upstream, aborted).ConfigureAwait(false);
        }
        catch (Exception ex) when (aborted.IsCancellationRequested)
        {
            GatewayLog.ClientAborted(_logger, request.Method, route.Authority, route.PathAndQuery);
            _ = ex;
            return;
        }
        catch (Exception ex) when (ex is HttpRequestException or SocketException or OperationCanceledException or IOException)
        {
            var (code, detail) = GatewayErrors.Describe(ex, route, peer, _options.ConnectTimeout);
            await FailAsync(context, route, code, detail).ConfigureAwait(false);
            return;
        }

        using (response)
        {
            GatewayLog.Proxied(_logger, request.Method, route.Prefix, route.Authority, route.PathAndQuery, (int)response.StatusCode);
            context.Response.StatusCode = (int)response.StatusCode;
            CopyResponseHeaders(response.Headers, context.Response.Headers);
            CopyResponseHeaders(response.Content.Headers, context.Response.Headers);
            context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            byte[] buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
            try
            {
                await context.Response.StartAsync(aborted).ConfigureAwait(false);
                var body = await response.Content.ReadAsStreamAsync(aborted).ConfigureAwait(false);
                await using (body.ConfigureAwait(false))
                {
                    int n;
                    while ((n = await body.ReadAsync(buffer, aborted).ConfigureAwait(false)) > 0)
                    {
                        await context.Response.Body.WriteAsync(buffer.AsMemory(0, n), aborted).ConfigureAwait(false);
                    }
                }

                if (context.Response.SupportsTrailers())
                {
                    foreach (var (name, values) in response.TrailingHeaders)
                    {
                        context.Response.AppendTrailer(name, values.ToArray());
                    }
                }
            }
            catch (Exception ex) when (aborted.IsCancellationRequested)
            {
                _ = ex;
                GatewayLog.ClientAborted(_logger, request.Method, route.Authority, route.PathAndQuery);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
            {
                // The status line is out: the only honest signal left is to break the client's response too.
                GatewayLog.BodyBrokeOff(_logger, route.Authority, route.PathAndQuery, ex.Message);
                context.Abort();
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private static void CopyRequestHeaders(HttpContext context, HttpRequestMessage upstream, GatewayRoute route)
    {
        var headers = context.Request.Headers;
        var listed = HopByHopHeaders.Listed(headers.Connection);
        foreach (var (name, values) in headers)
        {
            if (HopByHopHeaders.Drop(name, listed) || IsSetByGateway(name))
            {
                continue;
            }

            if (!upstream.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values))
            {
                upstream.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }

        foreach (var (name, value) in ForwardedHeaders(context, route))
        {
            upstream.Headers.TryAddWithoutValidation(name, value);
        }
    }

    /// <summary>Host and the X-Forwarded-* headers: written by the gateway, never taken from the client as they are.</summary>
    internal static bool IsSetByGateway(string name) =>
        name.Equals("Host", StringComparison.OrdinalIgnoreCase)
        || name.Equals("X-Forwarded-For", StringComparison.OrdinalIgnoreCase)
        || name.Equals("X-Forwarded-Proto", StringComparison.OrdinalIgnoreCase)
        || name.Equals("X-Forwarded-Host", StringComparison.OrdinalIgnoreCase)
        || name.Equals("X-Forwarded-Prefix", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// X-Forwarded-For (the client's address appended to what earlier proxies wrote), -Proto and -Host
    /// (this request's), and in path mode X-Forwarded-Prefix (the <c>/node</c> prefix that was removed).
    /// </summary>
    internal static IEnumerable<KeyValuePair<string, string>> ForwardedHeaders(HttpContext context, GatewayRoute route)
    {
        var request = context.Request;
        string? client = context.Connection.RemoteIpAddress?.ToString();
        StringValues earlier = request.Headers["X-Forwarded-For"];
        string forwardedFor = StringValues.IsNullOrEmpty(earlier)
            ? client ?? "unknown"
            : string.Join(", ", earlier.ToArray()) + ", " + (client ?? "unknown");
        yield return new("X-Forwarded-For", forwardedFor);
        yield return new("X-Forwarded-Proto", request.Scheme);
        if (request.Host.HasValue)
        {
            yield return new("X-Forwarded-Host", request.Host.Value);
        }

        if (route.Prefix is not null)
        {
            yield return new("X-Forwarded-Prefix", route.Prefix);
        }
    }

    private static void CopyResponseHeaders(System.Net.Http.Headers.HttpHeaders from, IHeaderDictionary to)
    {
        HashSet<string>? listed = null;
        if (from.TryGetValues("Connection", out var connection))
        {
            listed = HopByHopHeaders.Listed(new StringValues(connection.ToArray()));
        }

        foreach (var (name, values) in from.NonValidated)
        {
            if (HopByHopHeaders.IsFixed(name) || (listed?.Contains(name) ?? false))
            {
                continue;
            }

            to[name] = values.Count == 1 ? new StringValues(values.ToString()) : new StringValues(values.ToArray());
        }
    }

    /// <summary>Answers a failure to reach the service: a problem+json body with the reason.</summary>
    internal async Task FailAsync(HttpContext context, GatewayRoute route, int status, string detail)
    {
        GatewayLog.UpstreamFailed(_logger, context.Request.Method, route.Authority, route.PathAndQuery, status, detail);
        await ProblemAsync(context, status, status == StatusCodes.Status504GatewayTimeout ? "Gateway Timeout" : "Bad Gateway", detail).ConfigureAwait(false);
    }

    internal static Task ProblemAsync(HttpContext context, int status, string title, string detail)
    {
        if (context.Response.HasStarted)
        {
            context.Abort();
            return Task.CompletedTask;
        }

        return Results.Problem(detail: detail, statusCode: status, title: title).ExecuteAsync(context);
    }

    /// <summary><c>GET /</c> in path mode: which nodes this gateway can reach, as JSON.</summary>
    private Task WriteIndexAsync(HttpContext context)
    {
        var status = _node.GetStatus();
        var nodes = status.Peers
            .Where(p => p.Name is not null)
            .Select(p => new { name = p.Name, online = p.Online, path = p.Path.ToString().ToLowerInvariant(), url = "/" + p.Name + "/" })
            .ToArray();
        return Results.Json(new { gateway = status.Self.Name, controlConnected = status.ControlConnected, nodes }).ExecuteAsync(context);
    }

    /// <inheritdoc/>
    public void Dispose() => _invoker.Dispose();
}
