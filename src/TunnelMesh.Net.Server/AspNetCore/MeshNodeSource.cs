using Microsoft.Extensions.DependencyInjection;

namespace TunnelMesh.Net.Server.AspNetCore;

/// <summary>Where a <see cref="MeshEndPoint"/> without a node instance finds its node: the host's services.</summary>
internal static class MeshNodeSource
{
    /// <summary>The node registered in <paramref name="services"/> (keyed by <paramref name="name"/>, or the unkeyed one), started.</summary>
    public static async Task<MeshNode> GetStartedNodeAsync(IServiceProvider services, string? name, CancellationToken cancellationToken)
    {
        MeshNode node = name is null
            ? services.GetService<MeshNode>() ?? throw NoNode("No MeshNode is registered in the host's services: call services.AddMeshNode(…), or UseMesh(node) with a node you started.")
            : services.GetKeyedService<MeshNode>(name) ?? throw NoNode($"No MeshNode keyed '{name}' is registered in the host's services: call services.AddMeshNode(\"{name}\", …).");
        if (!node.IsRunning)
        {
            await node.StartAsync(cancellationToken).ConfigureAwait(false);
        }

        return node;
    }

    private static InvalidOperationException NoNode(string message) => new(message);
}
