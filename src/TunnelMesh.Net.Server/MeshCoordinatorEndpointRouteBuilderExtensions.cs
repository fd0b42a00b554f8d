using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TunnelMesh.Net.Server.Api;
using TunnelMesh.Net.Server.Relay;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the TunnelMesh coordinator's API (docs/CONTROL-API.md).</summary>
public static class MeshCoordinatorEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the control API under <paramref name="prefix"/>: join, the map stream, endpoint updates,
    /// the relay (<c>{prefix}/relay</c>, node token), the replica link (<c>{prefix}/relay/replica</c>, cluster secret), the admin endpoints (auth keys, nodes) and health. Needs <c>services.AddMeshCoordinator(…)</c>.
    /// </summary>
    /// <param name="endpoints">The application's endpoint builder.</param>
    /// <param name="prefix">The route prefix; default <c>/api/v1</c>.</param>
    /// <returns>The route group, for further conventions (CORS, host filters, …).</returns>
    public static RouteGroupBuilder MapMeshCoordinator(this IEndpointRouteBuilder endpoints, string prefix = "/api/v1")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        if (endpoints.ServiceProvider.GetService<IServiceProviderIsService>()?.IsService(typeof(CoordinatorApi)) != true)
        {
            throw new InvalidOperationException("MapMeshCoordinator needs services.AddMeshCoordinator(...) first.");
        }

        RouteGroupBuilder group = endpoints.MapGroup(prefix);
        group.WithTags("TunnelMesh coordinator");

        group.MapPost("/join", Handler(c => Api(c).JoinAsync(c)))
            .AddEndpointFilter<RouteHandlerBuilder, JoinRateLimitFilter>();
        group.MapGet("/map", Handler(c => Api(c).MapAsync(c)));
        group.MapPut("/nodes/self/endpoints", Handler(c => Api(c).UpdateEndpointsAsync(c)));
        group.MapMeshRelay("/relay");
        group.MapReplicaLink("/relay/replica", prefix.TrimEnd('/') + "/relay/replica");
        group.MapGet("/health", Handler(c => Api(c).HealthAsync(c)));

        RouteGroupBuilder admin = group.MapGroup("");
        admin.AddEndpointFilter((context, next) =>
            Api(context.HttpContext).CheckAdmin(context.HttpContext) is { } refused ? ValueTask.FromResult<object?>(refused) : next(context));
        admin.MapPost("/authkeys", Handler(c => Api(c).CreateAuthKeyAsync(c)));
        admin.MapGet("/authkeys", Handler(c => Api(c).ListAuthKeysAsync(c)));
        admin.MapDelete("/authkeys/{id:long}", (HttpContext c, long id) => Api(c).RevokeAuthKeyAsync(c, id));
        admin.MapGet("/nodes", Handler(c => Api(c).ListNodesAsync(c)));
        admin.MapGet("/nodes/{id:long}", (HttpContext c, long id) => Api(c).GetNodeAsync(c, id));
        admin.MapPatch("/nodes/{id:long}", (HttpContext c, long id) => Api(c).RenameNodeAsync(c, id));
        admin.MapDelete("/nodes/{id:long}", (HttpContext c, long id) => Api(c).DeleteNodeAsync(c, id));
        admin.MapPost("/nodes/{id:long}/expire", (HttpContext c, long id) => Api(c).ExpireNodeAsync(c, id));
        return group;
    }

    // A Delegate, not a RequestDelegate, so the IResult is executed.
    private static Delegate Handler(Func<HttpContext, Task<IResult>> handler) => handler;

    private static CoordinatorApi Api(HttpContext context) => context.RequestServices.GetRequiredService<CoordinatorApi>();
}
