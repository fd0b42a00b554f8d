using System.Net;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using TunnelMesh.Net;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace SidecarGateway;

/// <summary>
/// The reverse proxy from public HTTP to services on mesh nodes. Requests are routed by
/// <see cref="GatewayRouter"/> (a configured host name first, then <c>/&lt;node&gt;[:port]/…</c>) and
/// forwarded by YARP's <see cref="IHttpForwarder"/> over the node's <see cref="SocketsHttpHandler"/>
/// (<see cref="MeshNode.CreateHttpMessageHandler"/>): bodies streamed both ways, HTTP/1.1 or HTTP/2
/// (h2c) to the node, trailers, WebSocket upgrades, YARP's header handling. Failures are answered
/// with a 502/504 problem that says why (<see cref="GatewayErrors"/>).
/// </summary>
public sealed class MeshGateway : IDisposable
{
    private readonly MeshNode _node;
    private readonly GatewayOptions _options;
    private readonly ILogger<MeshGateway> _logger;
    private readonly IHttpForwarder _forwarder;
    private readonly HttpTransformer _transformer;
    private readonly HttpMessageInvoker _invoker;
    private readonly ForwarderRequestConfig _http11;
    private readonly ForwarderRequestConfig _h2c;

    /// <summary>Creates the gateway for <paramref name="node"/>.</summary>
    /// <param name="node">The gateway's own mesh node; requests are dialled through it.</param>
    /// <param name="options">The gateway's options.</param>
    /// <param name="forwarder">YARP's forwarder (<c>services.AddHttpForwarder()</c>).</param>
    /// <param name="transforms">YARP's transform builder, for the X-Forwarded-* headers.</param>
    /// <param name="logger">Where the gateway logs.</param>
    public MeshGateway(MeshNode node, IOptions<GatewayOptions> options, IHttpForwarder forwarder, ITransformBuilder transforms, ILogger<MeshGateway> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(transforms);
        _node = node ?? throw new ArgumentNullException(nameof(node));
        _options = options.Value;
        _forwarder = forwarder ?? throw new ArgumentNullException(nameof(forwarder));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));

        // The settings YARP's own client factory gives a proxy's handler, on the handler that dials through the mesh.
        var handler = node.CreateHttpMessageHandler();
        handler.AllowAutoRedirect = false;
        handler.AutomaticDecompression = DecompressionMethods.None;
        handler.UseCookies = false;
        handler.EnableMultipleHttp2Connections = true;
        handler.ConnectTimeout = _options.ConnectTimeout;
        handler.ActivityHeadersPropagator = null; // forward the client's trace headers as they are
        _invoker = new HttpMessageInvoker(handler, disposeHandler: true);

        // X-Forwarded-For appended to what earlier proxies wrote; -Proto and -Host this request's.
        // X-Forwarded-Prefix is the route's (GatewayTransformer), not the PathBase YARP would take.
        _transformer = transforms.Create(context =>
        {
            context.UseDefaultForwarders = false;
            context.AddXForwardedFor(action: ForwardedTransformActions.Append);
            context.AddXForwardedProto(action: ForwardedTransformActions.Set);
            context.AddXForwardedHost(action: ForwardedTransformActions.Set);
        });

        _http11 = new ForwarderRequestConfig
        {
            ActivityTimeout = _options.ActivityTimeout,
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
        };

        // HTTP/2 with prior knowledge: the only HTTP/2 there is without TLS (SocketsHttpHandler does no h2c upgrade).
        _h2c = _http11 with { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
    }

    /// <summary>Handles one request (the endpoint that <c>MapMeshGateway</c> maps).</summary>
    /// <param name="context">The public request.</param>
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
        MeshPeerStatus? peer = _node.GetStatus().FindPeer(route!.Node);
        if (peer is null && !IPAddress.TryParse(route.Node, out _))
        {
            await FailAsync(context, route, StatusCodes.Status502BadGateway, GatewayErrors.NoSuchNode(route.Node)).ConfigureAwait(false);
            return;
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = _options.MaxRequestBodySize;
        }

        ForwarderError result = await _forwarder.SendAsync(
            context,
            "http://" + route.Authority,
            _invoker,
            route.Http2 ? _h2c : _http11,
            new GatewayTransformer(_transformer, route)).ConfigureAwait(false);
        if (result == ForwarderError.None)
        {
            GatewayLog.Proxied(_logger, context.Request.Method, route.Prefix, route.Authority, route.PathAndQuery, context.Response.StatusCode);
            return;
        }

        await ReportAsync(context, route, peer, result).ConfigureAwait(false);
    }

    /// <summary>
    /// After YARP gave up: a client that went away is only logged (YARP already set its status);
    /// anything else, while the response has not started, becomes the problem that says why;
    /// after it started YARP has reset the client's response and there is only the log left.
    /// </summary>
    private async Task ReportAsync(HttpContext context, GatewayRoute route, MeshPeerStatus? peer, ForwarderError result)
    {
        Exception? exception = context.Features.Get<IForwarderErrorFeature>()?.Exception;
        if (context.RequestAborted.IsCancellationRequested || IsClientSide(result))
        {
            GatewayLog.ClientAborted(_logger, context.Request.Method, route.Authority, route.PathAndQuery, result.ToString());
            return;
        }

        if (context.Response.HasStarted)
        {
            GatewayLog.BodyBrokeOff(_logger, route.Authority, route.PathAndQuery, result.ToString(), exception?.Message ?? "");
            return;
        }

        var (status, detail) = GatewayErrors.Describe(result, exception, route, peer, _options);
        context.Response.Clear();
        await FailAsync(context, route, status, detail).ConfigureAwait(false);
    }

    /// <summary>Errors on the client's side of the gateway: nothing to tell a client that sent a bad body or left.</summary>
    private static bool IsClientSide(ForwarderError error) => error is ForwarderError.RequestCanceled
        or ForwarderError.RequestBodyCanceled
        or ForwarderError.RequestBodyClient
        or ForwarderError.ResponseBodyCanceled
        or ForwarderError.ResponseBodyClient
        or ForwarderError.UpgradeRequestCanceled
        or ForwarderError.UpgradeRequestClient
        or ForwarderError.UpgradeResponseCanceled
        or ForwarderError.UpgradeResponseClient;

    /// <summary>Answers a failure to reach the service: a problem+json body with the reason.</summary>
    private async Task FailAsync(HttpContext context, GatewayRoute route, int status, string detail)
    {
        GatewayLog.UpstreamFailed(_logger, context.Request.Method, route.Authority, route.PathAndQuery, status, detail);
        await ProblemAsync(context, status, status == StatusCodes.Status504GatewayTimeout ? "Gateway Timeout" : "Bad Gateway", detail).ConfigureAwait(false);
    }

    private static Task ProblemAsync(HttpContext context, int status, string title, string detail)
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
