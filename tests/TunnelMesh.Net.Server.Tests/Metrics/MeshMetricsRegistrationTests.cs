using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using TunnelMesh.Net.Server.Metrics;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Metrics;

/// <summary>How <c>AddMeshMetrics</c> and <c>MapMeshMetrics</c> combine with each other and with an application's own OpenTelemetry set-up.</summary>
[Collection(nameof(MetricsCollection))]
public sealed class MeshMetricsRegistrationTests
{
    [Fact]
    public void MapMeshMetrics_without_AddMeshMetrics_says_what_is_missing()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        using WebApplication app = builder.Build();
        var ex = Assert.Throws<InvalidOperationException>(() => app.MapMeshMetrics());
        Assert.Contains("AddMeshMetrics", ex.Message);
    }

    [Fact]
    public async Task AddMeshMetrics_joins_the_applications_own_OpenTelemetry_metrics_and_a_second_call_adds_nothing()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        string appMeter = "Test.App." + Guid.NewGuid().ToString("N");
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(appMeter));
        builder.Services.AddMeshCoordinator(o =>
        {
            o.AdminCredential = CoordinatorHost.AdminCredential;
            o.StoreFactory = _ => new MemoryMeshStore();
        });
        builder.Services.AddMeshMetrics();
        builder.Services.AddMeshMetrics(o => o.ScrapeResponseCacheDurationMilliseconds = 0);
        await using WebApplication app = builder.Build();
        app.MapMeshCoordinator();
        app.MapMeshMetrics("/internal/metrics");
        await app.StartAsync();
        using var meter = new Meter(appMeter);
        meter.CreateCounter<long>("test.app.requests", "{request}").Add(3);

        // One meter provider, one Prometheus reader: the application's meter and the coordinator's in one scrape.
        Assert.Single(app.Services.GetServices<MeterProvider>());
        using HttpClient client = app.GetTestServer().CreateClient();
        PrometheusScrape scrape = await PrometheusScrape.GetAsync(client, "/internal/metrics");
        Assert.Equal(3, scrape.Sum("test_app_requests_total"));
        Assert.True(scrape.Has("tunnelmesh_coordinator_map_deltas_total"), scrape.Text);
        Assert.Equal(1, scrape.Text.Split('\n').Count(l => l.StartsWith("# TYPE test_app_requests_total ", StringComparison.Ordinal)));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await client.GetAsync("/metrics")).StatusCode);
    }

    [Fact]
    public void MeshMeters_names_every_meter_the_library_publishes_on()
    {
        Assert.Equal(
            [MeshNode.MeterName, global::TunnelMesh.Net.Socks.MeshSocks5Server.MeterName, global::TunnelMesh.Net.Forwarding.MeshPortForwarder.MeterName, global::TunnelMesh.Net.Server.Relay.RelayHub.MeterName, "TunnelMesh.Net.Server.Coordinator"],
            MeshMeters.All);
    }

    [Theory]
    [InlineData("bad node key", "bad_node_key")]
    [InlineData("KeyRevoked", "key_revoked")]
    [InlineData("AddressesExhausted", "addresses_exhausted")]
    [InlineData("mesh full", "mesh_full")]
    public void Refusal_reasons_become_snake_case_tag_values(string reason, string tag) =>
        Assert.Equal(tag, CoordinatorMetrics.ReasonTag(reason));
}
