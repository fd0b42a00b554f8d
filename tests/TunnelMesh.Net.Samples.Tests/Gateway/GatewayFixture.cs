using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using SidecarGateway;
using SidecarGateway.Demo;
using TunnelMesh.Net;

namespace TunnelMesh.Net.Samples.Tests.Gateway;

/// <summary>
/// A coordinator and a "homelab" node serving <see cref="HomelabService"/> on its mesh port 80
/// (<see cref="DemoMesh"/>), and the gateway app (Kestrel on 127.0.0.1:0) as another node of that
/// mesh, configured like a deployment: host names mapped, a short connect timeout.
/// </summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <summary>The connect timeout of the gateway (short, so an offline node is reported quickly).</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(3);

    public DemoMesh Mesh { get; private set; } = null!;

    public WebApplication Gateway { get; private set; } = null!;

    public MeshNode Node => GatewayHost.Node(Gateway);

    /// <summary>http://127.0.0.1:port/ of the gateway.</summary>
    public Uri Url { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(Deadline);
        Mesh = await DemoMesh.StartAsync("homelab", cancellationToken: cts.Token);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["MeshNode:ControlUrl"] = Mesh.ControlUrl.ToString(),
            ["MeshNode:AuthKey"] = Mesh.AuthKey,
            ["MeshNode:Hostname"] = "gateway",
            ["MeshNode:ListenAddress"] = "127.0.0.1",
            ["Gateway:ConnectTimeout"] = ConnectTimeout.ToString(),
            ["Gateway:Hosts:app.example"] = "http://homelab",
            ["Gateway:Hosts:bytes.example"] = "http://homelab.tunnelmesh:80/bytes/",
        });
        builder.Logging.ClearProviders();
        Gateway = GatewayHost.Build(builder, "http://127.0.0.1:0");
        await Gateway.StartAsync(cts.Token);
        Url = GatewayHost.Address(Gateway);
        await DemoMesh.WaitForPeerAsync(Node, "homelab", cts.Token);
    }

    public async Task DisposeAsync()
    {
        if (Gateway is not null)
        {
            await Gateway.StopAsync(CancellationToken.None);
            await Gateway.DisposeAsync();
        }

        if (Mesh is not null)
        {
            await Mesh.DisposeAsync();
        }
    }

    public HttpClient Client() => new() { BaseAddress = Url, Timeout = Deadline };
}
