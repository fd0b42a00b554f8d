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

        services.AddSingleton<IHostedService>(sp => new MeshSocks5HostedService(sp, key));
        return services;
    }

    /// <summary>
    /// Starts the proxy in StartAsync (the node started in StartingAsync, before it) and stops it in StopAsync.
    /// The proxy, and so the node, is resolved only then: a node's options may depend on nodes started before it.
    /// </summary>
    private sealed class MeshSocks5HostedService(IServiceProvider services, string key) : IHostedService
    {
        private MeshSocks5Server? _server;

        public Task StartAsync(CancellationToken cancellationToken)
        {
            _server = services.GetRequiredKeyedService<MeshSocks5Server>(key);
            return _server.StartAsync(cancellationToken);
        }

        public Task StopAsync(CancellationToken cancellationToken) => _server?.DisposeAsync().AsTask() ?? Task.CompletedTask;
    }
}
