using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Relay;
using TunnelMesh.Net.Server.Stores;
using TunnelMesh.Net.Server.Tests.Stores;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Relay;

/// <summary>
/// Coordinator replicas on real Kestrel (127.0.0.1) sharing one PostgreSQL database (TM_TEST_POSTGRES),
/// in a schema of their own that is dropped at the end. Each replica runs with the replica options
/// (its own URL, one cluster secret) and otherwise the defaults (the store comes from a factory only to
/// put it in the test's schema).
/// </summary>
internal sealed class ReplicaCluster : IAsyncDisposable
{
    public const string Secret = "cluster-secret-for-the-replica-tests-0123456789";

    private readonly string _schema = $"tm_repl_{Guid.NewGuid():N}"[..24];
    private readonly List<Replica> _replicas = [];

    public IReadOnlyList<Replica> Replicas => _replicas;

    public static async Task<ReplicaCluster> StartAsync(int count)
    {
        var cluster = new ReplicaCluster();
        try
        {
            for (int i = 0; i < count; i++)
            {
                cluster._replicas.Add(await cluster.StartReplicaAsync());
            }
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }

        return cluster;
    }

    /// <summary>Waits until every replica has a connected link to every other one.</summary>
    public Task LinkedAsync() => Await.UntilAsync(
        () => _replicas.All(r => r.Metrics.Statistics.Links == _replicas.Count - 1),
        TimeSpan.FromSeconds(60),
        () => "replica links up: " + string.Join(", ", _replicas.Select(r => r.Metrics.Statistics.Links)));

    private async Task<Replica> StartReplicaAsync()
    {
        string cs = new NpgsqlConnectionStringBuilder(PostgresFactAttribute.RequireConnectionString()) { MaxPoolSize = 20 }.ConnectionString;
        DateTime until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            // A replica must know the URL it advertises before it starts, so the port is chosen first
            // (a free one from the kernel) instead of port 0; if another process takes it meanwhile, try again.
            int port = FreePort();
            var url = new Uri($"http://127.0.0.1:{port}");
            WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseKestrel().UseUrls(url.AbsoluteUri);
            builder.Logging.ClearProviders();
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
            builder.Services.AddMeshCoordinator(o =>
            {
                o.AdminCredential = CoordinatorHost.AdminCredential;
                o.StoreFactory = _ => new PostgresMeshStore(cs, _schema);
                o.ReplicaUrl = url.AbsoluteUri;
                o.ClusterSecret = Secret;
            });
            WebApplication app = builder.Build();
            app.MapMeshCoordinator();
            try
            {
                await app.StartAsync();
                return new Replica(app, url);
            }
            catch (IOException ex) when (ex.InnerException is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse } && DateTime.UtcNow < until)
            {
                await app.DisposeAsync();
            }
        }
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        for (int i = _replicas.Count - 1; i >= 0; i--)
        {
            await _replicas[i].DisposeAsync();
        }

        if (PostgresFactAttribute.ConnectionString is { } cs)
        {
            NpgsqlConnection.ClearAllPools();
            await using var c = new NpgsqlConnection(cs);
            await c.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{_schema}\" CASCADE", c);
            await drop.ExecuteNonQueryAsync();
        }
    }

    /// <summary>One running replica.</summary>
    internal sealed class Replica : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private bool _stopped;

        public Replica(WebApplication app, Uri url)
        {
            _app = app;
            Url = url;
            Admin = new HttpClient { BaseAddress = url };
            Admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", CoordinatorHost.AdminCredential);
            Client = new HttpClient { BaseAddress = url };
        }

        /// <summary>http://127.0.0.1:port/ (its control URL and its ReplicaUrl).</summary>
        public Uri Url { get; }

        public HttpClient Admin { get; }

        public HttpClient Client { get; }

        public RelayHub Hub => _app.Services.GetRequiredService<RelayHub>();

        public ReplicaRelay Relay => _app.Services.GetRequiredService<ReplicaRelay>();

        public ReplicaRelayMetrics Metrics => _app.Services.GetRequiredService<ReplicaRelayMetrics>();

        public Uri RelayUrl => new(Url.AbsoluteUri.Replace("http://", "ws://", StringComparison.Ordinal) + "api/v1/relay");

        public Uri LinkUrl => new(Url.AbsoluteUri.Replace("http://", "ws://", StringComparison.Ordinal) + "api/v1/relay/replica");

        public async Task<string> CreateReusableKeyAsync()
        {
            HttpResponseMessage r = await Admin.PostAsJsonAsync("/api/v1/authkeys", new CreateAuthKeyRequest(Reusable: true), CoordinatorHost.Json);
            Assert.Equal(HttpStatusCode.Created, r.StatusCode);
            return (await r.Content.ReadFromJsonAsync<CreatedAuthKey>(CoordinatorHost.Json))!.Key;
        }

        public async Task<JoinResponse> JoinAsync(string authKey, string hostname)
        {
            HttpResponseMessage r = await Client.PostAsJsonAsync("/api/v1/join", new JoinRequest(authKey, CoordinatorHost.NewNodeKey(), hostname, ["192.0.2.1:51820"]), CoordinatorHost.Json);
            string body = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.OK, $"join answered {(int)r.StatusCode}: {body}");
            return JsonSerializer.Deserialize<JoinResponse>(body, CoordinatorHost.Json)!;
        }

        /// <summary>A raw relay connection with a node token (as a node's relay transport opens it).</summary>
        public async Task<ClientWebSocket> ConnectRelayAsync(string token, CancellationToken cancellationToken)
        {
            var ws = new ClientWebSocket();
            ws.Options.SetRequestHeader("Authorization", "Bearer " + token);
            await ws.ConnectAsync(RelayUrl, cancellationToken);
            return ws;
        }

        /// <summary>A replica link opened by the test itself, presenting <paramref name="bearer"/> (null: no Authorization header).</summary>
        public async Task<ClientWebSocket> ConnectLinkAsync(string? bearer, CancellationToken cancellationToken)
        {
            var ws = new ClientWebSocket();
            if (bearer is not null)
            {
                ws.Options.SetRequestHeader("Authorization", "Bearer " + bearer);
            }

            ws.Options.CollectHttpResponseDetails = true;
            try
            {
                await ws.ConnectAsync(LinkUrl, cancellationToken);
            }
            catch
            {
                ws.Dispose();
                throw;
            }

            return ws;
        }

        public async Task StopAsync()
        {
            if (!_stopped)
            {
                _stopped = true;
                await _app.StopAsync();
            }
        }

        public async ValueTask DisposeAsync()
        {
            Admin.Dispose();
            Client.Dispose();
            await StopAsync();
            await _app.DisposeAsync();
        }
    }
}
