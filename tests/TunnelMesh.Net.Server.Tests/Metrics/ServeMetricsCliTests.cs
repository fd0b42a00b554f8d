using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using TunnelMesh.Net.Cli;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Metrics;

/// <summary><c>tunnelmesh serve --metrics</c> serves /metrics; without the option there is none.</summary>
[Collection(nameof(MetricsCollection))]
public sealed partial class ServeMetricsCliTests
{
    private const string Admin = "cli-metrics-admin-credential-0123456789";

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Serve_with_metrics_serves_the_coordinators_meters_at_metrics(bool metrics)
    {
        string dir = Directory.CreateTempSubdirectory("tmcli-metrics").FullName;
        using var stop = new CancellationTokenSource();
        var output = new SyncWriter();
        string[] args = ["serve", "--listen", "http://127.0.0.1:0", "--db", Path.Combine(dir, "c.db"), "--admin-key", Admin, "--stun-port", "0", .. metrics ? new[] { "--metrics" } : []];
        Task<int> serving = Task.Run(() => TunnelMeshCli.RunAsync(args, output, output, stop.Token));
        try
        {
            DateTime until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            Match m;
            while (!(m = ListeningUrl().Match(output.Text)).Success)
            {
                Assert.False(serving.IsCompleted, "serve ended early: " + output.Text);
                Assert.True(DateTime.UtcNow < until, "serve did not print its URL: " + output.Text);
                await Task.Delay(25);
            }

            using var http = new HttpClient { BaseAddress = new Uri(m.Groups[1].Value) };
            using HttpResponseMessage response = await http.GetAsync("/metrics");
            string body = await response.Content.ReadAsStringAsync();
            if (metrics)
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Contains("# TYPE tunnelmesh_coordinator_map_deltas_total counter", body);
                Assert.Contains("Prometheus metrics at /metrics", output.Text);
            }
            else
            {
                Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
                Assert.DoesNotContain("Prometheus metrics", output.Text);
            }
        }
        finally
        {
            await stop.CancelAsync();
            Assert.Equal(0, await serving.WaitAsync(TimeSpan.FromSeconds(30)));
            Directory.Delete(dir, recursive: true);
        }
    }

    [GeneratedRegex(@"coordinator listening on (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningUrl();
}
