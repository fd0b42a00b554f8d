using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TunnelMesh.Net;
using TunnelMesh.Net.Hosting;
using TunnelMesh.Net.Socks;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>A SOCKS5 proxy on a DI-registered node (<c>services.AddMeshSocks5(…)</c>), started and stopped with the host.</summary>
public static class MeshSocks5ServiceCollectionExtensions
{
    /// <summary>
    /// Adds a SOCKS5 proxy (default 127.0.0.1:1080) that opens its connections through the node registered
    /// under <paramref name="nodeName"/> (null: the unnamed one, <c>AddMeshNode(…)</c>). It starts with the host,
    /// after the node, and stops with it; resolve <see cref="MeshSocks5Server"/> (keyed by the node's name for a
    /// named node) to read its <see cref="MeshSocks5Server.LocalEndPoint"/>. A bad option fails the host's start
    /// with a <see cref="MeshConfigurationException"/> naming it.
    /// </summary>
    /// <example>
    /// <code>
    /// builder.Services.AddMeshNode(builder.Configuration.GetSection("MeshNode"));
    /// builder.Services.AddMeshSocks5(o => o.ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 1080));
    /// // curl --socks5-hostname 127.0.0.1:1080 http://billing/
    /// </code>
    /// </example>
    public static IServiceCollection AddMeshSocks5(this IServiceCollection services, Action<MeshSocks5Options>? configure = null, string? nodeName = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        string key = nodeName ?? string.Empty;
        var builder = services.AddOptions<MeshSocks5Options>(key);
        if (configure is not null)
        {
            builder.Configure(configure);
        }

        services.AddKeyedSingleton(key, static (sp, k) => new MeshSocks5Server(
            sp.GetRequiredKeyedService<MeshNodeRunner>(k).Node,
            sp.GetRequiredService<IOptionsMonitor<MeshSocks5Options>>().Get((string)k!),
            sp.GetService<ILoggerFactory>()));
        if (nodeName is null)
        {
            services.AddSingleton(static sp => sp.GetRequiredKeyedService<MeshSocks5Server>(string.Empty));
        }

        services.AddSingleton<IHostedService>(sp => new NodeServiceHostedService<MeshSocks5Server>(
            () => sp.GetRequiredKeyedService<MeshSocks5Server>(key),
            static (server, ct) => server.StartAsync(ct)));
        return services;
    }
}
