using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Tests.Support;

/// <summary>A minimal-API application with the coordinator mapped, on the ASP.NET Core test server.</summary>
public sealed class CoordinatorHost : IAsyncDisposable
{
    public const string AdminCredential = "test-admin-credential-0123456789";

    /// <summary>A request header that sets the client address the coordinator sees.</summary>
    public const string ClientAddressHeader = "X-Test-Client-Address";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly WebApplication _app;

    private readonly string? _sqlitePath;

    private CoordinatorHost(WebApplication app, IMeshStore store, LogCollector logs, string? sqlitePath)
    {
        _app = app;
        _sqlitePath = sqlitePath;
        Store = store;
        Logs = logs;
        Server = app.GetTestServer();
        Client = Server.CreateClient();
        Admin = Server.CreateClient();
        Admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminCredential);
    }

    public TestServer Server { get; }

    public HttpClient Client { get; }

    public HttpClient Admin { get; }

    public IMeshStore Store { get; }

    public LogCollector Logs { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>A temporary SQLite file path, unique to the caller (deleted by <see cref="DeleteSqlite"/>).</summary>
    public static string TempSqlitePath() => Path.Combine(Path.GetTempPath(), $"tm-api-{Guid.NewGuid():N}.db");

    public static void DeleteSqlite(string path)
    {
        foreach (string p in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
        {
            File.Delete(p);
        }
    }

    /// <summary>Starts a coordinator on <paramref name="store"/>, or a new store of <paramref name="storeKind"/> ("memory" or "sqlite", a temporary file).</summary>
    public static async Task<CoordinatorHost> StartAsync(Action<MeshCoordinatorOptions>? configure = null, TimeProvider? time = null, IMeshStore? store = null, string storeKind = "memory")
    {
        string? sqlitePath = null;
        if (store is null && storeKind == "sqlite")
        {
            sqlitePath = TempSqlitePath();
            store = new SqliteMeshStore(sqlitePath);
        }

        store ??= new MemoryMeshStore();
        var logs = new LogCollector();
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(logs);
        if (time is not null)
        {
            builder.Services.AddSingleton(time);
        }

        builder.Services.AddMeshCoordinator(o =>
        {
            o.AdminCredential = AdminCredential;
            o.StoreFactory = _ => store;
            o.JoinPermitsPerMinute = 1_000_000;
            configure?.Invoke(o);
        });
        WebApplication app = builder.Build();

        // The test server has no client address; tests pick one with a header.
        app.Use((context, next) =>
        {
            if (context.Request.Headers.TryGetValue(ClientAddressHeader, out var a) && IPAddress.TryParse(a.ToString(), out IPAddress? ip))
            {
                context.Connection.RemoteIpAddress = ip;
            }

            return next(context);
        });
        app.MapMeshCoordinator();
        await app.StartAsync();
        return new CoordinatorHost(app, store, logs, sqlitePath);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        Admin.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        if (_sqlitePath is not null)
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            DeleteSqlite(_sqlitePath);
        }
    }

    public static string NewNodeKey() => NodePrivateKey.Generate().PublicKey.ToString(); // a real key: small-order and non-canonical ones are refused at join

    public async Task<CreatedAuthKey> CreateKeyAsync(CreateAuthKeyRequest request)
    {
        HttpResponseMessage r = await Admin.PostAsJsonAsync("/api/v1/authkeys", request, Json);
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        return (await r.Content.ReadFromJsonAsync<CreatedAuthKey>(Json))!;
    }

    public Task<HttpResponseMessage> PostJoinAsync(JoinRequest request) => Client.PostAsJsonAsync("/api/v1/join", request, Json);

    public async Task<JoinResponse> JoinAsync(string authKey, string hostname, string? nodeKey = null, bool ephemeral = false)
    {
        HttpResponseMessage r = await PostJoinAsync(new JoinRequest(authKey, nodeKey ?? NewNodeKey(), hostname, ["192.0.2.1:51820"], Ephemeral: ephemeral));
        string body = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"join answered {(int)r.StatusCode}: {body}");
        return JsonSerializer.Deserialize<JoinResponse>(body, Json)!;
    }

    public async Task<MapStream> OpenMapAsync(string nodeToken, bool viaQuery = false)
    {
        WebSocketClient ws = Server.CreateWebSocketClient();
        if (!viaQuery)
        {
            ws.ConfigureRequest = r => r.Headers.Authorization = "Bearer " + nodeToken;
        }

        var uri = new Uri(viaQuery ? "ws://localhost/api/v1/map?access_token=" + Uri.EscapeDataString(nodeToken) : "ws://localhost/api/v1/map");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        WebSocket socket = await ws.ConnectAsync(uri, cts.Token);
        return new MapStream(socket);
    }

    /// <summary>The problem details of a response, after checking its status and media type.</summary>
    public static async Task<ProblemDetails> ProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        ProblemDetails p = JsonSerializer.Deserialize<ProblemDetails>(body, Json)!;
        Assert.Equal((int)status, p.Status);
        Assert.False(string.IsNullOrEmpty(p.Detail), "problem details without a detail: " + body);
        return p;
    }
}

/// <summary>A node's side of GET /map: applies snapshot and deltas to a peer table.</summary>
public sealed class MapStream(WebSocket socket) : IAsyncDisposable
{
    public Dictionary<string, MeshNodeInfo> Peers { get; } = new(StringComparer.Ordinal);

    public long Version { get; private set; }

    public int Messages { get; private set; }

    public int Snapshots { get; private set; }

    public List<PeerMapMessage> Received { get; } = [];

    public WebSocketCloseStatus? CloseStatus => socket.CloseStatus;

    public string? CloseDescription => socket.CloseStatusDescription;

    /// <summary>The next message, applied; null once the server closed the stream.</summary>
    public async Task<PeerMapMessage?> ReceiveAsync(CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        using var ms = new MemoryStream();
        while (true)
        {
            WebSocketReceiveResult r = await socket.ReceiveAsync(buffer, ct);
            if (r.MessageType == WebSocketMessageType.Close)
            {
                if (socket.State == WebSocketState.CloseReceived)
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, ct);
                }

                return null;
            }

            ms.Write(buffer, 0, r.Count);
            if (r.EndOfMessage)
            {
                break;
            }
        }

        PeerMapMessage m = JsonSerializer.Deserialize<PeerMapMessage>(ms.ToArray(), CoordinatorHost.Json)!;
        Apply(m);
        return m;
    }

    /// <summary>Receives until <paramref name="condition"/> holds; fails after the deadline or when the stream closes.</summary>
    public async Task WaitUntilAsync(Func<MapStream, bool> condition, string what, TimeSpan? deadline = null)
    {
        using var cts = new CancellationTokenSource(deadline ?? TimeSpan.FromSeconds(30));
        while (!condition(this))
        {
            PeerMapMessage? m;
            try
            {
                m = await ReceiveAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new Xunit.Sdk.XunitException($"map stream: not '{what}' before the deadline; peers {string.Join(",", Peers.Values.Select(p => p.Name))}");
            }

            if (m is null)
            {
                throw new Xunit.Sdk.XunitException($"map stream closed ({CloseStatus} {CloseDescription}) before '{what}'");
            }
        }
    }

    public async Task CloseAsync()
    {
        if (socket.State == WebSocketState.Open)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await CloseAsync();
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
        }

        socket.Dispose();
    }

    private void Apply(PeerMapMessage m)
    {
        Received.Add(m);
        Messages++;
        Assert.True(m.Version >= Version, $"versions go back: {m.Version} after {Version}");
        Version = m.Version;
        if (m.Type == PeerMapMessageType.Snapshot)
        {
            // The first message, or a fresh one after the stream fell behind (it replaces the map).
            Snapshots++;
            Peers.Clear();
            foreach (MeshNodeInfo p in m.Peers!)
            {
                Peers[p.PublicKey] = p;
            }

            return;
        }

        Assert.True(Snapshots > 0, "a delta came before the snapshot");
        foreach (MeshNodeInfo p in m.Upserted ?? [])
        {
            Peers[p.PublicKey] = p;
        }

        foreach (string k in m.Removed ?? [])
        {
            Peers.Remove(k);
        }
    }
}
