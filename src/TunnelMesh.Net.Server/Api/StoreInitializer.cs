using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using TunnelMesh.Net.Server.Metrics;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Api;

/// <summary>Creates the store's schema when the host starts, before the other coordinator services run.</summary>
internal sealed class StoreInitializer(IMeshStore store) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => store.InitializeAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Puts the WebSocket middleware at the front of the pipeline so GET /map can upgrade whether or not
/// the application called <c>UseWebSockets</c> (a second instance leaves an upgrade already handled alone).
/// </summary>
internal sealed class WebSocketsStartupFilter : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.UseWebSockets();
        next(app);
    };
}

/// <summary>Marks that the coordinator's services are registered (AddMeshCoordinator called twice registers them once).</summary>
internal sealed class MeshCoordinatorMarker;

/// <summary>An endpoint filter that applies the join rate limit (429 with the reason).</summary>
internal sealed class JoinRateLimitFilter(JoinRateLimiter limiter, Microsoft.Extensions.Logging.ILogger<CoordinatorApi> logger, CoordinatorMetrics metrics) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        string? client = context.HttpContext.Connection.RemoteIpAddress?.ToString();
        if (!limiter.TryAcquire(client ?? "unknown"))
        {
            Log.JoinRateLimited(logger, client);
            metrics.JoinRefused("rate limited");
            context.HttpContext.Response.Headers.RetryAfter = "60";
            return Problems.Create(StatusCodes.Status429TooManyRequests, "Too many joins from this address; try again later.");
        }

        return await next(context).ConfigureAwait(false);
    }
}
