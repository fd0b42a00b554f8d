using Microsoft.Extensions.DependencyInjection;
using TunnelMesh.Net;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Named and typed <see cref="HttpClient"/>s (IHttpClientFactory) whose connections go through a mesh node.</summary>
public static class MeshHttpClientBuilderExtensions
{
    /// <summary>
    /// Makes the client's primary handler dial through the node registered with <c>services.AddMeshNode</c>
    /// (<paramref name="nodeName"/> for a keyed one), so request URIs name mesh hosts:
    /// <c>http://billing/</c>, <c>http://billing.tunnelmesh:8080/</c>.
    /// </summary>
    /// <example>
    /// <code>
    /// builder.Services.AddMeshNode(builder.Configuration.GetSection("MeshNode"));
    /// builder.Services.AddHttpClient("billing", c => c.BaseAddress = new Uri("http://billing/")).UseMeshNode();
    /// </code>
    /// </example>
    public static IHttpClientBuilder UseMeshNode(this IHttpClientBuilder builder, string? nodeName = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.ConfigurePrimaryHttpMessageHandler(sp => (nodeName is null
            ? sp.GetRequiredService<MeshNode>()
            : sp.GetRequiredKeyedService<MeshNode>(nodeName)).CreateHttpMessageHandler());
    }
}
