using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TunnelMesh.Net;
using TunnelMesh.Net.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="MeshNode"/>s in a generic host (<c>services.AddMeshNode(…)</c>).</summary>
public static class MeshNodeServiceCollectionExtensions
{
    /// <summary>
    /// Adds a mesh node that starts with the host and stops with it. Resolve it as <see cref="MeshNode"/>.
    /// Its options are named options (<c>IOptions&lt;MeshNodeOptions&gt;</c> with the default name), so
    /// <c>services.Configure&lt;MeshNodeOptions&gt;(…)</c> can add to them; they are validated when the host
    /// starts, and a bad one stops the start with a <see cref="MeshConfigurationException"/> that names it.
    /// </summary>
    /// <example>
    /// <code>
    /// builder.Services.AddMeshNode(o =>
    /// {
    ///     o.ControlUrl = new Uri("https://mesh.example.com");
    ///     o.AuthKey = builder.Configuration["MeshAuthKey"];
    ///     o.Hostname = "orders";
    ///     o.StateDirectory = "/var/lib/orders/mesh";
    /// });
    /// </code>
    /// </example>
    public static IServiceCollection AddMeshNode(this IServiceCollection services, Action<MeshNodeOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return Add(services, null, b => b.Configure(configure));
    }

    /// <summary>
    /// Adds a mesh node configured from <paramref name="configuration"/> (e.g. <c>Configuration.GetSection("MeshNode")</c>):
    /// keys are the <see cref="MeshNodeOptions"/> names, lists are arrays or comma-separated strings, peers are
    /// an array of <see cref="MeshPeerOptions"/>. An unknown key or malformed value fails the host's start
    /// with a <see cref="MeshConfigurationException"/> naming its path (e.g. <c>MeshNode:ListenPort</c>).
    /// </summary>
    public static IServiceCollection AddMeshNode(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return Add(services, null, b => b.Configure(o => MeshNodeConfiguration.Bind(configuration, o)));
    }

    /// <summary>
    /// Adds a named mesh node (several nodes per process): resolve it as a keyed service,
    /// <c>[FromKeyedServices("name")] MeshNode</c> or <c>GetRequiredKeyedService&lt;MeshNode&gt;("name")</c>.
    /// Its options are the named options <paramref name="name"/>.
    /// </summary>
    public static IServiceCollection AddMeshNode(this IServiceCollection services, string name, Action<MeshNodeOptions> configure)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(configure);
        return Add(services, name, b => b.Configure(configure));
    }

    /// <summary>Adds a named mesh node configured from <paramref name="configuration"/> (see the unnamed overloads).</summary>
    public static IServiceCollection AddMeshNode(this IServiceCollection services, string name, IConfiguration configuration)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(configuration);
        return Add(services, name, b => b.Configure(o => MeshNodeConfiguration.Bind(configuration, o)));
    }

    /// <summary>
    /// Adds a health check of the node registered under <paramref name="name"/> (null: the unnamed one):
    /// Healthy while it runs and holds the coordinator's map stream, Degraded while the coordinator is out
    /// of reach, <paramref name="failureStatus"/> (Unhealthy by default) when it is not running. Its data
    /// carry the address, name, peer counts and map version.
    /// </summary>
    public static IHealthChecksBuilder AddMeshNode(this IHealthChecksBuilder builder, string? name = null, HealthStatus? failureStatus = null, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        string key = name ?? string.Empty;
        return builder.Add(new HealthCheckRegistration(
            name is null ? "mesh-node" : "mesh-node:" + name,
            sp => new MeshNodeHealthCheck(sp.GetRequiredKeyedService<MeshNodeRunner>(key)),
            failureStatus,
            tags));
    }

    private static IServiceCollection Add(IServiceCollection services, string? name, Action<OptionsBuilder<MeshNodeOptions>> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        string key = name ?? string.Empty;
        if (services.Any(d => d.IsKeyedService && d.ServiceType == typeof(MeshNodeRunner) && Equals(d.ServiceKey, key)))
        {
            throw new InvalidOperationException(name is null
                ? "AddMeshNode was called twice without a name; give each node a name (AddMeshNode(\"name\", …)) to run several."
                : $"A mesh node named '{name}' is already registered.");
        }

        configure(services.AddOptions<MeshNodeOptions>(key));
        services.AddKeyedSingleton(key, static (sp, k) => new MeshNodeRunner(
            (string)k!, sp.GetRequiredService<IOptionsMonitor<MeshNodeOptions>>(), sp.GetService<ILoggerFactory>() ?? Logging.Abstractions.NullLoggerFactory.Instance));
        if (name is null)
        {
            services.AddSingleton(static sp => sp.GetRequiredKeyedService<MeshNodeRunner>(string.Empty).Node);
        }
        else
        {
            services.AddKeyedSingleton(name, static (sp, k) => sp.GetRequiredKeyedService<MeshNodeRunner>(k).Node);
        }

        services.AddSingleton<IHostedService>(sp => new MeshNodeHostedService(sp.GetRequiredKeyedService<MeshNodeRunner>(key)));
        return services;
    }
}
