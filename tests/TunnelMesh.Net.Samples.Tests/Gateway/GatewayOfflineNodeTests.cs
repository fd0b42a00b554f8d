using System.Net;
using TunnelMesh.Net;

namespace TunnelMesh.Net.Samples.Tests.Gateway;

/// <summary>A node the mesh knows but that is gone: the gateway answers 502 (or 504) with the reason, within its connect timeout.</summary>
public sealed class GatewayOfflineNodeTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    [Fact]
    public async Task A_known_node_that_went_offline_gets_502_with_the_reason()
    {
        using var cts = new CancellationTokenSource(GatewayFixture.Deadline);
        var sleepy = new MeshNode(fixture.Mesh.NodeOptions("sleepy"));
        await using (sleepy)
        {
            await sleepy.StartAsync(cts.Token);
            await SidecarGateway.Demo.DemoMesh.WaitForPeerAsync(fixture.Node, "sleepy", cts.Token);
        }

        // The coordinator sees the node's map stream end and tells the gateway it is offline.
        while (fixture.Node.GetStatus().FindPeer("sleepy") is { Online: true })
        {
            await Task.Delay(20, cts.Token);
        }

        using var http = fixture.Client();
        using var response = await http.GetAsync("/sleepy/", cts.Token);
        string body = await response.Content.ReadAsStringAsync(cts.Token);
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(
            body.Contains("node 'sleepy' is offline", StringComparison.Ordinal) || body.Contains("no node named 'sleepy'", StringComparison.Ordinal),
            body);
    }

    [Fact]
    public async Task Healthz_reports_the_gateway_node()
    {
        using var http = fixture.Client();
        using var response = await http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(fixture.Node.IsRunning);
    }
}
