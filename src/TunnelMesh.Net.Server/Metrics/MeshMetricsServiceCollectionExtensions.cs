using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using TunnelMesh.Net.Server.Metrics;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers TunnelMesh's metrics with OpenTelemetry and the Prometheus exporter.</summary>
public static class MeshMetricsServiceCollectionExtensions
{
    /// <summary>
    /// Adds OpenTelemetry metrics listening to every TunnelMesh meter (<see cref="MeshMeters.All"/>:
    /// node, SOCKS5 proxy, port forwarder, relay, coordinator) and the Prometheus exporter; serve the
    /// scrape endpoint with <c>app.MapMeshMetrics()</c>. It joins an OpenTelemetry set-up the application
    /// has already made (<c>AddOpenTelemetry()</c> may be called any number of times; there is one meter
    /// provider), and a second call adds nothing. An application that already adds the Prometheus
    /// exporter itself should call <see cref="MeshMetricsMeterProviderBuilderExtensions.AddMeshMeters"/>
    /// on its own builder instead, so the exporter is not registered twice.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the exporter's options (scrape response cache, name translation, …); the defaults are the exporter's.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddMeshMetrics(this IServiceCollection services, Action<PrometheusAspNetCoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (configure is not null)
        {
            services.Configure(configure);
        }

        if (services.Any(d => d.ServiceType == typeof(MeshMetricsMarker)))
        {
            return services;
        }

        services.TryAddSingleton<MeshMetricsMarker>();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeshMeters().AddPrometheusExporter());
        return services;
    }
}
