using Microsoft.Extensions.DependencyInjection.Extensions;
using TunnelMesh.Net.Server.Relay;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the coordinator's relay.</summary>
public static class RelayServiceCollectionExtensions
{
    /// <summary>
    /// Registers the <see cref="RelayHub"/> (one per application) and its options. An
    /// <see cref="IRelayAuthenticator"/> must be registered too (<c>AddMeshCoordinator</c> does).
    /// </summary>
    public static IServiceCollection AddMeshRelay(this IServiceCollection services, Action<MeshRelayOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<MeshRelayOptions>(); // validated by the hub's constructor, naming the option
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton<RelayHub>();
        return services;
    }
}
