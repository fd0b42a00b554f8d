using TunnelMesh.Net.Server.Metrics;

namespace OpenTelemetry.Metrics;

/// <summary>Adds TunnelMesh's meters to an OpenTelemetry metrics set-up.</summary>
public static class MeshMetricsMeterProviderBuilderExtensions
{
    /// <summary>
    /// Subscribes the meter provider to every TunnelMesh meter (<see cref="MeshMeters.All"/>): the
    /// node's, the SOCKS5 proxy's, the port forwarder's, the relay's and the coordinator's. For an
    /// OpenTelemetry set-up of your own, with whatever exporters it has:
    /// <c>services.AddOpenTelemetry().WithMetrics(m =&gt; m.AddMeshMeters().AddOtlpExporter())</c>.
    /// </summary>
    /// <param name="builder">The meter provider builder.</param>
    /// <returns>The builder, for chaining.</returns>
    public static MeterProviderBuilder AddMeshMeters(this MeterProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddMeter([.. MeshMeters.All]);
    }
}
