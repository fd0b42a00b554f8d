using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.Support;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Server.Tests.EndToEnd;

/// <summary>
/// The real coordinator on Kestrel (127.0.0.1, port 0 at first) with its default SQLite store in a
/// temporary directory, plus the MeshNodes a test starts against it. The coordinator can be stopped
/// and started again on the same port with the same SQLite file. Disposing stops every node, the
/// coordinator, and deletes the directory (SQLite file and node state directories).
/// </summary>
internal sealed class KestrelMesh : IAsyncDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly Action<MeshCoordinatorOptions>? _configure;
    private readonly TimeProvider? _time;
    private readonly List<MeshNode> _nodes = [];
    private readonly List<(string Name, LogCollector Logs)> _logs = [];
    private WebApplication? _app;
    private int _port;

    private KestrelMesh(Action<MeshCoordinatorOptions>? configure, TimeProvider? time)
    {
        _configure = configure;
        _time = time;
        Root = Directory.CreateTempSubdirectory("tm-e2e-");
        SqlitePath = Path.Combine(Root.FullName, "mesh.db");
    }

    /// <summary>The temporary directory holding the SQLite file and the nodes' state directories.</summary>
    public DirectoryInfo Root { get; }

    public string SqlitePath { get; }

    /// <summary>http://127.0.0.1:port/ of the coordinator (the same across restarts).</summary>
    public Uri Url { get; private set; } = null!;

    public HttpClient Admin { get; private set; } = null!;

    public bool CoordinatorRunning => _app is not null;

    /// <summary>Starts the coordinator on 127.0.0.1:0; <paramref name="time"/> replaces its clock when given.</summary>
    public static async Task<KestrelMesh> StartAsync(Action<MeshCoordinatorOptions>? configure = null, TimeProvider? time = null)
    {
        var mesh = new KestrelMesh(configure, time);
        try
        {
            await mesh.StartCoordinatorAsync();
        }
        catch
        {
            await mesh.DisposeAsync();
            throw;
        }

        return mesh;
    }

    /// <summary>Starts the coordinator: on port 0 the first time, afterwards on the port it had.</summary>
    public async Task StartCoordinatorAsync()
    {
        Assert.Null(_app);
        DateTime until = DateTime.UtcNow + Deadline;
        while (true)
        {
            try
            {
                _app = await StartAppAsync(_port);
                break;
            }
            catch (IOException ex) when (_port != 0 && ex.InnerException is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse } && DateTime.UtcNow < until)
            {
                // The old listener's port is not free yet: try again until the deadline.
                await Task.Delay(50);
            }
        }

        var url = new Uri(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        if (_port == 0)
        {
            _port = url.Port;
            Url = url;
            Admin = new HttpClient { BaseAddress = url };
            Admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", CoordinatorHost.AdminCredential);
        }
        else
        {
            Assert.Equal(_port, url.Port);
        }
    }

    /// <summary>Stops the coordinator (map streams and relay connections close); the SQLite file stays.</summary>
    public async Task StopCoordinatorAsync()
    {
        WebApplication app = _app ?? throw new InvalidOperationException("the coordinator is not running");
        _app = null;
        await app.StopAsync();
        await app.DisposeAsync();
    }

    private async Task<WebApplication> StartAppAsync(int port)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        if (_time is not null)
        {
            builder.Services.AddSingleton(_time);
        }

        builder.Services.AddMeshCoordinator(o =>
        {
            o.AdminCredential = CoordinatorHost.AdminCredential;
            o.SqlitePath = SqlitePath;
            o.JoinPermitsPerMinute = 10_000;
            _configure?.Invoke(o);
        });
        WebApplication app = builder.Build();
        app.MapMeshCoordinator();
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        return app;
    }

    public async Task<CreatedAuthKey> CreateKeyAsync(CreateAuthKeyRequest request)
    {
        HttpResponseMessage r = await Admin.PostAsJsonAsync("/api/v1/authkeys", request, CoordinatorHost.Json);
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        return (await r.Content.ReadFromJsonAsync<CreatedAuthKey>(CoordinatorHost.Json))!;
    }

    /// <summary>A reusable key (24 h).</summary>
    public async Task<string> CreateReusableKeyAsync() => (await CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true))).Key;

    public async Task<List<MeshNodeInfo>> ListNodesAsync() =>
        (await Admin.GetFromJsonAsync<List<MeshNodeInfo>>("/api/v1/nodes", CoordinatorHost.Json))!;

    /// <summary>A state directory path under <see cref="Root"/> (not created: the node makes it).</summary>
    public string StateDirectory(string name) => Path.Combine(Root.FullName, "state-" + name);

    /// <summary>Options of a node in control mode bound to 127.0.0.1 (so it publishes a loopback endpoint).</summary>
    public MeshNodeOptions NodeOptions(string hostname, string? authKey, string? stateDirectory = null, PathTiming? paths = null) => new()
    {
        ControlUrl = Url,
        AuthKey = authKey,
        Hostname = hostname,
        StateDirectory = stateDirectory,
        ListenAddress = IPAddress.Loopback,
        PathTiming = paths ?? PathTiming.Default,
    };

    /// <summary>A node that is not started yet, disposed with the mesh.</summary>
    public MeshNode CreateNode(MeshNodeOptions options, Func<MeshNodeOptions, PacketBufferPool, DropCounters, IDatagramTransport>? transport = null)
    {
        ILoggerFactory? logs = null;
        if (Environment.GetEnvironmentVariable("TM_E2E_LOG") is not null)
        {
            var collector = new LogCollector();
            _logs.Add((options.Hostname + "-" + _logs.Count, collector));
            logs = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(collector));
        }

        var node = new MeshNode(options, logs, null, transport);
        _nodes.Add(node);
        return node;
    }

    /// <summary>Creates and starts a node, disposed with the mesh.</summary>
    public async Task<MeshNode> StartNodeAsync(MeshNodeOptions options, Func<MeshNodeOptions, PacketBufferPool, DropCounters, IDatagramTransport>? transport = null)
    {
        MeshNode node = CreateNode(options, transport);
        using var cts = new CancellationTokenSource(Deadline);
        await node.StartAsync(cts.Token);
        return node;
    }

    public Task<MeshNode> StartNodeAsync(string hostname, string authKey, string? stateDirectory = null) =>
        StartNodeAsync(NodeOptions(hostname, authKey, stateDirectory));

    public async ValueTask DisposeAsync()
    {
        for (int i = _nodes.Count - 1; i >= 0; i--)
        {
            await _nodes[i].DisposeAsync();
        }

        if (_app is not null)
        {
            await StopCoordinatorAsync();
        }

        Admin?.Dispose();
        if (Environment.GetEnvironmentVariable("TM_E2E_LOG") is { } dir)
        {
            foreach ((string name, LogCollector logs) in _logs)
            {
                File.WriteAllLines(Path.Combine(dir, name + ".log"), logs.Lines);
            }
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Root.Delete(recursive: true);
    }

    // ------------------------------------------------------------------ helpers for the tests

    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test after <paramref name="limit"/> (default <see cref="Deadline"/>).</summary>
    public static async Task UntilAsync(Func<bool> condition, Func<string> what, TimeSpan? limit = null)
    {
        DateTime until = DateTime.UtcNow + (limit ?? Deadline);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "timed out waiting until " + what());
            await Task.Delay(20);
        }
    }

    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? limit = null) => UntilAsync(condition, () => what, limit);

    /// <summary>Waits until <paramref name="node"/>'s status lists a peer named <paramref name="name"/>.</summary>
    public static async Task<MeshPeerStatus> PeerAsync(MeshNode node, string name)
    {
        await UntilAsync(() => node.GetStatus().FindPeer(name) is not null, () => $"{node.GetStatus().Self.Name} sees {name} (it sees {Names(node)})");
        return node.GetStatus().FindPeer(name)!;
    }

    public static string Names(MeshNode node) => string.Join(",", node.GetStatus().Peers.Select(p => $"{p.Name}:{p.Path}"));

    /// <summary>
    /// Dials <paramref name="name"/> from <paramref name="from"/> on <paramref name="listener"/>'s port, sends a line,
    /// checks that the listener's side got it, echoes it back and checks the echo.
    /// </summary>
    public static async Task EchoAsync(MeshNode from, string name, MeshTcpListener listener)
    {
        using var cts = new CancellationTokenSource(Deadline);
        Task<MeshTcpStream> accepting = listener.AcceptAsync(cts.Token).AsTask();
        MeshTcpStream client = await from.DialAsync(name, listener.LocalEndPoint.Port, cts.Token);
        await using (client)
        await using (MeshTcpStream server = await accepting)
        {
            byte[] hello = Encoding.ASCII.GetBytes($"hello {name} from {from.GetStatus().Self.Name} {RandomNumberGenerator.GetHexString(8)}");
            await client.WriteAsync(hello, cts.Token);
            byte[] got = new byte[hello.Length];
            await server.ReadExactlyAsync(got, cts.Token);
            Assert.Equal(hello, got);
            await server.WriteAsync(got, cts.Token);
            byte[] back = new byte[hello.Length];
            await client.ReadExactlyAsync(back, cts.Token);
            Assert.Equal(hello, back);
        }
    }

    /// <summary>Sends <paramref name="size"/> seeded bytes from <paramref name="from"/> to <paramref name="name"/> on the listener's port and checks both sides' SHA-256.</summary>
    public static async Task TransferAsync(MeshNode from, string name, MeshTcpListener listener, long size, int seed)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        Task<MeshTcpStream> accepting = listener.AcceptAsync(cts.Token).AsTask();
        await using MeshTcpStream client = await from.DialAsync(name, listener.LocalEndPoint.Port, cts.Token);
        await using MeshTcpStream server = await accepting;
        Task<TcpTransfer.Outcome> receiving = TcpTransfer.ReceiveAsync(server, size, cts.Token);
        TcpTransfer.Outcome sent = await TcpTransfer.SendAsync(client, size, seed, cancellationToken: cts.Token);
        TcpTransfer.AssertSame(sent, await receiving, $"transfer {seed} to {name}");
    }
}
