using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using TunnelMesh.Net.Server.Tests.EndToEnd;

namespace TunnelMesh.Net.Server.Tests.Node;

/// <summary>The health check of a node in control mode: Healthy while it holds the map stream, Degraded while the coordinator is down.</summary>
public sealed class HostedNodeHealthTests
{
    [Fact]
    public async Task A_hosted_node_is_healthy_with_its_coordinator_and_degraded_without_it()
    {
        await using var mesh = await KestrelMesh.StartAsync();
        string key = await mesh.CreateReusableKeyAsync();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddMeshNode(o =>
        {
            var template = mesh.NodeOptions("hosted", key);
            o.ControlUrl = template.ControlUrl;
            o.AuthKey = template.AuthKey;
            o.Hostname = template.Hostname;
            o.StateDirectory = template.StateDirectory;
            o.ListenAddress = template.ListenAddress;
        });
        builder.Services.AddHealthChecks().AddMeshNode();
        using var host = builder.Build();
        await host.StartAsync().WaitAsync(KestrelMesh.Deadline);
        var health = host.Services.GetRequiredService<HealthCheckService>();
        var node = host.Services.GetRequiredService<MeshNode>();

        await KestrelMesh.UntilAsync(() => node.GetStatus().ControlConnected, "the node connects its map stream");
        var up = (await health.CheckHealthAsync()).Entries["mesh-node"];
        Assert.Equal(HealthStatus.Healthy, up.Status);
        Assert.Equal("hosted.tunnelmesh", up.Data["name"]);
        Assert.Equal(true, up.Data["controlConnected"]);

        await mesh.StopCoordinatorAsync();
        await KestrelMesh.UntilAsync(() => !node.GetStatus().ControlConnected, "the node sees the coordinator go");
        var down = (await health.CheckHealthAsync()).Entries["mesh-node"];
        Assert.Equal(HealthStatus.Degraded, down.Status);
        Assert.Contains("not connected to the coordinator", down.Description, StringComparison.Ordinal);
        await host.StopAsync().WaitAsync(KestrelMesh.Deadline);
    }
}
