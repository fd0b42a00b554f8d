using System.Net;
using System.Net.Http.Json;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Metrics;

/// <summary>Each way a join is refused, including the rate limit in front of the handler, is counted with its reason.</summary>
[Collection(nameof(MetricsCollection))]
public sealed class JoinRefusalMetricsTests
{
    [Fact]
    public async Task Refused_joins_are_counted_by_reason_and_the_rate_limit_too()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddMeshCoordinator(o =>
        {
            o.AdminCredential = CoordinatorHost.AdminCredential;
            o.StoreFactory = _ => new MemoryMeshStore();
            o.JoinPermitsPerMinute = 3;
        });
        builder.Services.AddMeshMetrics(o => o.ScrapeResponseCacheDurationMilliseconds = 0);
        await using WebApplication app = builder.Build();
        app.MapMeshCoordinator();
        app.MapMeshMetrics();
        await app.StartAsync();
        using HttpClient client = app.GetTestServer().CreateClient();

        // Three permits a minute for this client: a body that is not JSON, a bad node key, no credential; then 429.
        using var notJson = new StringContent("{not json", Encoding.UTF8, "application/json");
        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsync("/api/v1/join", notJson)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsJsonAsync("/api/v1/join", new JoinRequest("tmkey-1-x", "not-a-key", "a", []), CoordinatorHost.Json)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.PostAsJsonAsync("/api/v1/join", new JoinRequest(null, CoordinatorHost.NewNodeKey(), "a", []), CoordinatorHost.Json)).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await client.PostAsJsonAsync("/api/v1/join", new JoinRequest(null, CoordinatorHost.NewNodeKey(), "a", []), CoordinatorHost.Json)).StatusCode);

        PrometheusScrape scrape = await PrometheusScrape.GetAsync(client);
        const string Joins = "tunnelmesh_coordinator_joins_total";
        Assert.Equal(1, scrape.Sum(Joins, ("result", "refused"), ("reason", "bad_request_body")));
        Assert.Equal(1, scrape.Sum(Joins, ("result", "refused"), ("reason", "bad_node_key")));
        Assert.Equal(1, scrape.Sum(Joins, ("result", "refused"), ("reason", "no_credential")));
        Assert.Equal(1, scrape.Sum(Joins, ("result", "refused"), ("reason", "rate_limited")));
        Assert.Equal(4, scrape.Sum(Joins));
        Assert.Equal("counter", scrape.Types[Joins]);
    }
}
