using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using TunnelMesh.Net;
using TunnelMesh.Net.Server.AspNetCore;

namespace Microsoft.AspNetCore.Hosting;

/// <summary>Serves a web app on a node's mesh address with no TUN device: <c>builder.WebHost.UseMesh(…)</c>.</summary>
/// <remarks>
/// Kestrel's rule applies: endpoints configured in code (as these methods do) replace the URLs from
/// <c>ASPNETCORE_URLS</c>, <c>--urls</c> and <c>UseUrls</c>. To serve on a normal port too, use
/// <see cref="MeshListenOptions.AlsoListen"/> or <c>ConfigureKestrel(k =&gt; k.ListenLocalhost(5000))</c>.
/// </remarks>
public static class MeshWebHostBuilderExtensions
{
    /// <summary>Serves on <paramref name="port"/> of the mesh address of the node registered with <c>services.AddMeshNode(…)</c>.</summary>
    /// <example>
    /// <code>
    /// builder.Services.AddMeshNode(builder.Configuration.GetSection("MeshNode"));
    /// builder.WebHost.UseMesh(80);
    /// </code>
    /// </example>
    public static IWebHostBuilder UseMesh(this IWebHostBuilder builder, int port = 80) =>
        builder.UseMesh(o => o.Port = port);

    /// <summary>Serves on the port, node and extra endpoints that <paramref name="configure"/> sets.</summary>
    /// <example>
    /// <code>
    /// builder.WebHost.UseMesh(o =>
    /// {
    ///     o.NodeName = "public";                                   // AddMeshNode("public", …)
    ///     o.Port = 8080;
    ///     o.AlsoListen(new IPEndPoint(IPAddress.Loopback, 5000));  // keep a local port as well
    /// });
    /// </code>
    /// </example>
    public static IWebHostBuilder UseMesh(this IWebHostBuilder builder, Action<MeshListenOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new MeshListenOptions();
        configure(options);
        MeshEndPoint endPoint = options.ToEndPoint();
        var also = options.AdditionalListens.ToArray();
        Action<ListenOptions>? configureEndpoint = options.ConfigureEndpoint;
        return builder.UseMeshTransport().ConfigureServices(services => services.Configure<KestrelServerOptions>(kestrel =>
        {
            kestrel.Listen(endPoint, configureEndpoint ?? NoConfiguration);
            foreach (var (ip, configureIp) in also)
            {
                kestrel.Listen(ip, configureIp ?? NoConfiguration);
            }
        }));
    }

    /// <summary>
    /// Serves on <paramref name="port"/> of <paramref name="node"/>'s mesh address; no DI registration of the node is
    /// needed. The node must be started before the web host starts, and be disposed after it stops.
    /// </summary>
    /// <example>
    /// <code>
    /// await using var node = new MeshNode(options);
    /// await node.StartAsync();
    /// builder.WebHost.UseMesh(node, 80);
    /// </code>
    /// </example>
    public static IWebHostBuilder UseMesh(this IWebHostBuilder builder, MeshNode node, int port = 80)
    {
        ArgumentNullException.ThrowIfNull(node);
        return builder.UseMesh(o =>
        {
            o.Node = node;
            o.Port = port;
        });
    }

    /// <summary>
    /// Registers only the mesh transport, so that <see cref="MeshKestrelServerOptionsExtensions.ListenMesh(KestrelServerOptions, int, string?, Action{ListenOptions}?)"/>
    /// (or <c>Listen(new MeshEndPoint(…))</c>) in <c>ConfigureKestrel</c> can bind. Every <c>UseMesh</c> overload calls it;
    /// calling it twice is harmless. Kestrel's socket transport stays in place for IP endpoints.
    /// </summary>
    public static IWebHostBuilder UseMeshTransport(this IWebHostBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.ConfigureServices(services =>
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnectionListenerFactory, MeshConnectionListenerFactory>()));
    }

    private static void NoConfiguration(ListenOptions options)
    {
    }
}

/// <summary>Mesh endpoints among Kestrel's endpoints (<c>ConfigureKestrel(k =&gt; k.ListenMesh(80))</c>).</summary>
/// <remarks>These need the mesh transport: call <see cref="MeshWebHostBuilderExtensions.UseMeshTransport"/> (or any <c>UseMesh</c>) on the web host builder.</remarks>
public static class MeshKestrelServerOptionsExtensions
{
    /// <summary>Listens on <paramref name="port"/> of the mesh address of the node registered in the host's services (<paramref name="nodeName"/>: its key; null for the unkeyed node).</summary>
    /// <example>
    /// <code>
    /// builder.WebHost.UseMeshTransport().ConfigureKestrel(k =>
    /// {
    ///     k.ListenLocalhost(5000);
    ///     k.ListenMesh(80);
    /// });
    /// </code>
    /// </example>
    public static void ListenMesh(this KestrelServerOptions options, int port, string? nodeName = null, Action<ListenOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Listen(new MeshEndPoint(port, nodeName), configure ?? (_ => { }));
    }

    /// <summary>Listens on <paramref name="port"/> of <paramref name="node"/>'s mesh address (the node must be started before the web host starts).</summary>
    public static void ListenMesh(this KestrelServerOptions options, MeshNode node, int port, Action<ListenOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Listen(new MeshEndPoint(node, port), configure ?? (_ => { }));
    }
}
