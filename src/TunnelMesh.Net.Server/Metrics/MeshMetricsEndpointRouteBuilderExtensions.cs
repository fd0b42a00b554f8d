using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TunnelMesh.Net.Server.Metrics;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Serves TunnelMesh's metrics for Prometheus to scrape.</summary>
public static class MeshMetricsEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the Prometheus scrape endpoint (text exposition format) at <paramref name="pattern"/>, serving
    /// every meter the application's OpenTelemetry metrics listen to: TunnelMesh's after
    /// <c>services.AddMeshMetrics()</c>, plus any the application adds. The endpoint is not protected:
    /// restrict it with the returned builder (<c>.RequireHost("localhost:9090")</c>,
    /// <c>.RequireAuthorization()</c>) or serve it on a port only the scraper reaches.
    /// </summary>
    /// <param name="endpoints">The application's endpoint builder.</param>
    /// <param name="pattern">The path; default <c>/metrics</c>.</param>
    /// <returns>The endpoint's convention builder.</returns>
    /// <exception cref="InvalidOperationException"><c>services.AddMeshMetrics()</c> was not called.</exception>
    public static IEndpointConventionBuilder MapMeshMetrics(this IEndpointRouteBuilder endpoints, string pattern = "/metrics")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        if (endpoints.ServiceProvider.GetService<IServiceProviderIsService>()?.IsService(typeof(MeshMetricsMarker)) != true)
        {
            throw new InvalidOperationException("MapMeshMetrics needs services.AddMeshMetrics() first.");
        }

        return endpoints.MapPrometheusScrapingEndpoint(pattern);
    }
}
