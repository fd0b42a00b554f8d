using Microsoft.Extensions.DependencyInjection;
using TunnelMesh.Net.Hosting;

namespace TunnelMesh.Net;

/// <summary>Access to DI-registered nodes (<c>services.AddMeshNode</c>) for code that runs before the host has started them.</summary>
public static class MeshNodeServiceProviderExtensions
{
    /// <summary>
    /// The node registered under <paramref name="name"/> (null: the unnamed one), once it has started. If the
    /// host has not started it yet (e.g. a server binding its listeners first), this starts it; every caller
    /// and the host share that one start.
    /// </summary>
    /// <exception cref="InvalidOperationException">No node is registered under that name.</exception>
    /// <exception cref="MeshConfigurationException">An option is invalid.</exception>
    /// <exception cref="ObjectDisposedException">The host has stopped the node.</exception>
    public static async Task<MeshNode> GetStartedMeshNodeAsync(this IServiceProvider services, string? name = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(services);
        var runner = services.GetKeyedService<MeshNodeRunner>(name ?? string.Empty)
            ?? throw new InvalidOperationException(name is null
                ? "No mesh node is registered; call services.AddMeshNode(…) first."
                : $"No mesh node named '{name}' is registered; call services.AddMeshNode(\"{name}\", …) first.");
        await runner.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        return runner.Node;
    }
}
