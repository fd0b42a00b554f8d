using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TunnelMesh.Net.Server;
using TunnelMesh.Net.Server.Api;
using TunnelMesh.Net.Server.Metrics;
using TunnelMesh.Net.Server.Relay;
using TunnelMesh.Net.Server.Stores;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the TunnelMesh coordinator in an ASP.NET Core application.</summary>
public static class MeshCoordinatorServiceCollectionExtensions
{
    /// <summary>
    /// Adds the coordinator's services: options (validated at start), the store, the peer-map
    /// broadcaster, the ephemeral-node sweep, the <see cref="NodeAuthenticator"/>, and the relay
    /// (<c>AddMeshRelay</c>, with an <see cref="IRelayAuthenticator"/> that accepts joined nodes by their token). Map the API
    /// with <c>app.MapMeshCoordinator()</c>. Registrations made before this call (an
    /// <see cref="IMeshStore"/>, a <see cref="TimeProvider"/>) win.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options; <see cref="MeshCoordinatorOptions.AdminCredential"/> is required.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddMeshCoordinator(this IServiceCollection services, Action<MeshCoordinatorOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<MeshCoordinatorOptions>().Configure(configure).ValidateOnStart();
        if (services.Any(d => d.ServiceType == typeof(MeshCoordinatorMarker)))
        {
            return services;
        }

        services.AddSingleton<MeshCoordinatorMarker>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MeshCoordinatorOptions>, MeshCoordinatorOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(CreateStore);
        services.TryAddSingleton<CoordinatorSettings>();
        services.TryAddSingleton(sp => new NodeAuthenticator(sp.GetRequiredService<IMeshStore>()));
        services.TryAddSingleton<IRelayAuthenticator, NodeRelayAuthenticator>();
        services.AddMeshRelay();
        services.TryAddSingleton<PeerMapBroadcaster>();
        services.TryAddSingleton<CoordinatorMetrics>();
        services.TryAddSingleton<MapStreamHandler>();
        services.TryAddSingleton<JoinRateLimiter>();
        services.TryAddSingleton<EphemeralNodeReaper>();
        services.TryAddSingleton<CoordinatorApi>();
        services.TryAddSingleton<ReplicaRelayMetrics>();
        services.TryAddSingleton<ReplicaLinkRoute>();
        services.TryAddSingleton<ReplicaRelay>();

        // Hosted services start in this order: the schema first.
        services.AddHostedService<StoreInitializer>();
        services.AddHostedService(sp => sp.GetRequiredService<PeerMapBroadcaster>());
        services.AddHostedService(sp => sp.GetRequiredService<EphemeralNodeReaper>());
        services.AddHostedService(sp => sp.GetRequiredService<ReplicaRelay>()); // does nothing without ReplicaUrl
        services.TryAddEnumerable(ServiceDescriptor.Transient<IStartupFilter, WebSocketsStartupFilter>());
        return services;
    }

    private static IMeshStore CreateStore(IServiceProvider services)
    {
        MeshCoordinatorOptions o = services.GetRequiredService<IOptions<MeshCoordinatorOptions>>().Value;
        if (o.StoreFactory is { } factory)
        {
            return factory(services) ?? throw new InvalidOperationException("MeshCoordinatorOptions.StoreFactory returned null.");
        }

        ILoggerFactory? logs = services.GetService<ILoggerFactory>();
        return o.PostgresConnectionString is { } postgres
            ? new PostgresMeshStore(postgres, logger: logs?.CreateLogger<PostgresMeshStore>())
            : new SqliteMeshStore(o.SqlitePath, logs?.CreateLogger<SqliteMeshStore>());
    }
}
