using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using TunnelMesh.Net;

namespace SidecarGateway;

/// <summary>Builds the gateway application: a mesh node, the gateway on its public URL(s), and <c>/healthz</c>.</summary>
public static class GatewayHost
{
    /// <summary>
    /// Creates the gateway app from <paramref name="builder"/>'s configuration: section <c>MeshNode</c>
    /// for the node, section <c>Gateway</c> for <see cref="GatewayOptions"/> (its <c>Urls</c> are where
    /// Kestrel listens unless <paramref name="urls"/> overrides them).
    /// </summary>
    public static WebApplication Build(WebApplicationBuilder builder, string? urls = null, Action<GatewayOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var gateway = builder.Configuration.GetSection(GatewayOptions.Section);
        builder.WebHost.UseUrls(urls ?? gateway["Urls"] ?? new GatewayOptions().Urls);
        builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        builder.Services.AddMeshNode(builder.Configuration.GetSection("MeshNode"));
        builder.Services.AddHealthChecks().AddMeshNode();
        builder.Services.AddMeshGateway(gateway, configure);

        var app = builder.Build();
        app.MapHealthChecks("/healthz");
        app.MapMeshGateway();
        return app;
    }

    /// <summary>The first address Kestrel listens on (after start), e.g. http://127.0.0.1:5080.</summary>
    public static Uri Address(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    /// <summary>The gateway's mesh node.</summary>
    public static MeshNode Node(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Services.GetRequiredService<MeshNode>();
    }
}
