using System.Globalization;
using System.Net;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using TunnelMesh.Net;

namespace SidecarGateway;

/// <summary>
/// Interim hosting of the gateway's <see cref="MeshNode"/> (until core's <c>AddMeshNode</c> is on
/// main): the node is built from the configuration section <c>MeshNode</c>, started with the host
/// and disposed when it stops; a health check reports it.
/// </summary>
public static class GatewayNodeHosting
{
    /// <summary>Registers a <see cref="MeshNode"/> singleton from <paramref name="section"/> and a hosted service that starts and stops it.</summary>
    public static IServiceCollection AddGatewayMeshNode(this IServiceCollection services, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(section);
        services.AddSingleton(sp => new MeshNode(ReadOptions(section), sp.GetRequiredService<ILoggerFactory>()));
        services.AddHostedService<NodeLifetime>();
        return services;
    }

    /// <summary>Adds the <c>mesh-node</c> health check: healthy when the node runs and its coordinator connection is up.</summary>
    public static IHealthChecksBuilder AddGatewayMeshNode(this IHealthChecksBuilder builder) =>
        builder.AddCheck<NodeHealthCheck>("mesh-node");

    /// <summary>The node options from configuration keys (ControlUrl, AuthKey, Hostname, StateDirectory, ListenAddress, ListenPort, Ephemeral).</summary>
    public static MeshNodeOptions ReadOptions(IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(section);
        var options = new MeshNodeOptions
        {
            ControlUrl = section["ControlUrl"] is { Length: > 0 } url ? new Uri(url) : null,
            AuthKey = section["AuthKey"],
            Hostname = section["Hostname"],
            StateDirectory = section["StateDirectory"],
            Ephemeral = bool.TryParse(section["Ephemeral"], out bool ephemeral) && ephemeral,
        };
        if (section["ListenAddress"] is { Length: > 0 } address)
        {
            options.ListenAddress = IPAddress.Parse(address);
        }

        if (section["ListenPort"] is { Length: > 0 } port)
        {
            options.ListenPort = int.Parse(port, CultureInfo.InvariantCulture);
        }

        return options;
    }

    private sealed class NodeLifetime(MeshNode node) : IHostedService, IAsyncDisposable
    {
        public Task StartAsync(CancellationToken cancellationToken) => node.StartAsync(cancellationToken);

        public async Task StopAsync(CancellationToken cancellationToken) => await node.DisposeAsync().ConfigureAwait(false);

        public ValueTask DisposeAsync() => node.DisposeAsync();
    }

    private sealed class NodeHealthCheck(MeshNode node) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            if (!node.IsRunning)
            {
                return Task.FromResult(HealthCheckResult.Unhealthy("the mesh node is not running"));
            }

            var status = node.GetStatus();
            var data = new Dictionary<string, object>
            {
                ["name"] = status.Self.Name ?? "",
                ["peers"] = status.Peers.Count,
                ["controlConnected"] = status.ControlConnected,
            };
            return Task.FromResult(status.ControlConnected
                ? HealthCheckResult.Healthy($"{status.Self.Name} runs with {status.Peers.Count} peers", data)
                : HealthCheckResult.Degraded("the coordinator connection is down (data keeps flowing to known peers)", data: data));
        }
    }
}
