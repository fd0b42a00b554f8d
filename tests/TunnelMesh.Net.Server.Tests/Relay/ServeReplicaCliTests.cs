using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Npgsql;
using TunnelMesh.Net.Cli;
using TunnelMesh.Net.Server.Tests.Stores;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Relay;

/// <summary><c>tunnelmesh serve --replica-url … --cluster-secret …</c>.</summary>
public sealed partial class ServeReplicaCliTests
{
    private const string Admin = "cli-replica-admin-credential-0123456789";
    private const string Secret = "cli-replica-cluster-secret-0123456789abcdef";

    [Fact]
    public async Task Serve_with_a_replica_url_but_a_short_secret_and_no_postgres_fails_naming_both_options()
    {
        string dir = Directory.CreateTempSubdirectory("tmcli-replica").FullName;
        try
        {
            var output = new SyncWriter();
            string[] args = ["serve", "--listen", "http://127.0.0.1:0", "--db", Path.Combine(dir, "c.db"), "--admin-key", Admin, "--stun-port", "0", "--replica-url", "http://127.0.0.1:9", "--cluster-secret", "short"];
            int code = await TunnelMeshCli.RunAsync(args, output, output, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.NotEqual(0, code);
            Assert.Contains("MeshCoordinatorOptions.ClusterSecret: too short", output.Text);
            Assert.Contains("MeshCoordinatorOptions.ReplicaUrl: replicas share the PostgreSQL store", output.Text);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [PostgresFact]
    public async Task Serve_with_postgres_a_replica_url_and_the_secret_runs_a_replica_whose_link_wants_the_secret()
    {
        string schema = $"tm_cli_{Guid.NewGuid():N}"[..24];
        string cs = PostgresFactAttribute.RequireConnectionString();
        await ExecuteAsync(cs, $"CREATE SCHEMA \"{schema}\"");
        string dir = Directory.CreateTempSubdirectory("tmcli-replica").FullName;
        using var stop = new CancellationTokenSource();
        var output = new SyncWriter();
        int port = FreePort();
        string url = $"http://127.0.0.1:{port}";
        string withSchema = new NpgsqlConnectionStringBuilder(cs) { SearchPath = schema, MaxPoolSize = 10 }.ConnectionString;
        string[] args = ["serve", "--listen", url, "--postgres", withSchema, "--admin-key", Admin, "--stun-port", "0", "--replica-url", url, "--cluster-secret", Secret];
        Task<int> serving = Task.Run(() => TunnelMeshCli.RunAsync(args, output, output, stop.Token));
        try
        {
            DateTime until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!ListeningUrl().IsMatch(output.Text))
            {
                Assert.False(serving.IsCompleted, "serve ended early: " + output.Text);
                Assert.True(DateTime.UtcNow < until, "serve did not print its URL: " + output.Text);
                await Task.Delay(25);
            }

            using var http = new HttpClient { BaseAddress = new Uri(url) };
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/relay/replica");
            request.Headers.Authorization = new("Bearer", "not-the-cluster-secret-0123456789abcdef");
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(request)).StatusCode);
            using var right = new HttpRequestMessage(HttpMethod.Get, "/api/v1/relay/replica");
            right.Headers.Authorization = new("Bearer", Secret);
            Assert.Equal(HttpStatusCode.BadRequest, (await http.SendAsync(right)).StatusCode); // authenticated, but not a WebSocket

            // It registered itself in the store under the URL it was given.
            await using var c = new NpgsqlConnection(withSchema);
            await c.OpenAsync();
            await using var read = new NpgsqlCommand("SELECT link_url FROM relay_replicas", c);
            Assert.Equal($"ws://127.0.0.1:{port}/api/v1/relay/replica", await read.ExecuteScalarAsync());
        }
        finally
        {
            await stop.CancelAsync();
            Assert.Equal(0, await serving.WaitAsync(TimeSpan.FromSeconds(30)));
            Directory.Delete(dir, recursive: true);
            NpgsqlConnection.ClearAllPools();
            await ExecuteAsync(cs, $"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        }
    }

    private static async Task ExecuteAsync(string cs, string sql)
    {
        await using var c = new NpgsqlConnection(cs);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync();
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    [GeneratedRegex(@"coordinator listening on (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningUrl();
}
