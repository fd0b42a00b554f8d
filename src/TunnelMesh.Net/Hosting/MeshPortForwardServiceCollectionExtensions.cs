using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net;
using TunnelMesh.Net.Forwarding;
using TunnelMesh.Net.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>A TCP service of the host put on a DI-registered node's mesh address (<c>services.AddMeshPortForward(…)</c>).</summary>
public static class MeshPortForwardServiceCollectionExtensions
{
    /// <summary>
    /// Forwards connections to <paramref name="meshPort"/> on the mesh address of the node registered under
    /// <paramref name="nodeName"/> (null: the unnamed one, <c>AddMeshNode(…)</c>) to <paramref name="target"/>
    /// on this host's own network (<c>host:port</c> or <c>[IPv6]:port</c>, e.g. <c>127.0.0.1:3000</c>).
    /// The <see cref="MeshPortForwarder"/> starts with the host, after the node, and stops with it; call this
    /// once per forwarded port (several per node are fine). A bad option, or a target that does not parse,
    /// fails the host's start with a <see cref="MeshConfigurationException"/> naming it.
    /// </summary>
    /// <example>
    /// <code>
    /// builder.Services.AddMeshNode(builder.Configuration.GetSection("MeshNode"));
    /// builder.Services.AddMeshPortForward(80, "127.0.0.1:3000");
    /// builder.Services.AddMeshPortForward(5432, "127.0.0.1:5432", configure: o => o.AllowedTags.Add("tag:db-clients"));
    /// </code>
    /// </example>
    public static IServiceCollection AddMeshPortForward(this IServiceCollection services, int meshPort, string target, string? nodeName = null, Action<MeshPortForwardOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(target);
        string key = nodeName ?? string.Empty;
        services.AddSingleton<IHostedService>(sp => new NodeServiceHostedService<MeshPortForwarder>(
            () =>
            {
                var options = new MeshPortForwardOptions { MeshPort = meshPort, Target = MeshPortForwardOptions.ParseTarget(target) };
                configure?.Invoke(options);
                return new MeshPortForwarder(sp.GetRequiredKeyedService<MeshNodeRunner>(key).Node, options, sp.GetService<ILoggerFactory>());
            },
            static (forwarder, ct) => forwarder.StartAsync(ct)));
        return services;
    }
}
