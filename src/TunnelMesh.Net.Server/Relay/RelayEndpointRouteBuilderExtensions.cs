using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Server.Relay;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the coordinator's relay endpoint.</summary>
public static class RelayEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the relay (a WebSocket endpoint, <see cref="RelayHub"/>) at <paramref name="pattern"/>. A
    /// request is accepted only when the <see cref="IRelayAuthenticator"/> from the request's services
    /// names a node (else 401); a request that is not a WebSocket upgrade gets 400. The endpoint brings
    /// its own WebSocket middleware, so <c>UseWebSockets</c> is not needed.
    /// </summary>
    /// <param name="endpoints">The route builder.</param>
    /// <param name="pattern">The route; default <c>/relay</c>.</param>
    /// <returns>The endpoint's convention builder (for authorization policies, host filters, …).</returns>
    /// <exception cref="InvalidOperationException">No <see cref="IRelayAuthenticator"/> is registered.</exception>
    public static IEndpointConventionBuilder MapMeshRelay(this IEndpointRouteBuilder endpoints, string pattern = "/relay")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        var services = endpoints.ServiceProvider;
        if (services.GetService<IServiceProviderIsService>() is { } isService && !isService.IsService(typeof(IRelayAuthenticator)))
        {
            throw new InvalidOperationException(
                $"MapMeshRelay needs an {nameof(IRelayAuthenticator)} service to tell joined nodes from others; register one (AddMeshCoordinator does).");
        }

        var hub = services.GetService<RelayHub>() ?? ActivatorUtilities.CreateInstance<RelayHub>(services);
        var branch = endpoints.CreateApplicationBuilder();
        branch.UseWebSockets();
        branch.Run(context => ServeAsync(context, hub));
        return endpoints.Map(pattern, branch.Build()).WithDisplayName("TunnelMesh relay");
    }

    private static async Task ServeAsync(HttpContext context, RelayHub hub)
    {
        var authenticator = context.RequestServices.GetRequiredService<IRelayAuthenticator>();
        var identity = await authenticator.AuthenticateAsync(context, context.RequestAborted).ConfigureAwait(false);
        if (identity is null || !identity.PublicKey.IsSet)
        {
            hub.CountRefused();
            RelayLog.Refused(hub.Logger, context.Connection.RemoteIpAddress?.ToString());
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await TypedResults.Problem(
                statusCode: StatusCodes.Status401Unauthorized,
                title: "Not a joined node",
                detail: "The relay needs a valid node token (Authorization: Bearer ...).").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        if (!context.WebSockets.IsWebSocketRequest)
        {
            await TypedResults.Problem(
                statusCode: StatusCodes.Status400BadRequest,
                title: "WebSocket required",
                detail: "The relay speaks WebSocket only (see docs/RELAY.md).").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        var options = hub.Options;
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            DangerousEnableCompression = false,
            KeepAliveInterval = options.KeepAliveInterval,
        }).ConfigureAwait(false);
        await hub.RunAsync(identity, socket, context.RequestAborted).ConfigureAwait(false);
    }
}
