using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using TunnelMesh.Net;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Forwarding;

namespace SidecarGateway.Demo;

/// <summary>
/// A whole mesh in this process, for the standalone demo and the self-test: an embedded coordinator
/// (ASP.NET Core on 127.0.0.1, SQLite in a temporary folder), a reusable auth key, and a "homelab" node
/// whose port 80 serves <see cref="HomelabService"/> (a Kestrel app on 127.0.0.1 behind a
/// <see cref="MeshPortForwarder"/>). Disposing stops everything and deletes the folder.
/// </summary>
public sealed class DemoMesh : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _owned = [];

    private DemoMesh(string folder) => Folder = folder;

    /// <summary>The temporary folder (SQLite file).</summary>
    public string Folder { get; }

    /// <summary>The coordinator's URL (http://127.0.0.1:port/).</summary>
    public Uri ControlUrl { get; private set; } = null!;

    /// <summary>A reusable auth key for more nodes (the gateway's).</summary>
    public string AuthKey { get; private set; } = null!;

    /// <summary>The homelab node.</summary>
    public MeshNode Homelab { get; private set; } = null!;

    /// <summary>The homelab service's own loopback address (what the forwarder dials).</summary>
    public Uri ServiceUrl { get; private set; } = null!;

    /// <summary>Starts the coordinator, the homelab node named <paramref name="homelabName"/> and its service.</summary>
    public static async Task<DemoMesh> StartAsync(string homelabName = "homelab", ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        var mesh = new DemoMesh(Directory.CreateTempSubdirectory("tunnelmesh-gateway-").FullName);
        try
        {
            await mesh.StartCoreAsync(homelabName, loggerFactory, cancellationToken).ConfigureAwait(false);
            return mesh;
        }
        catch
        {
            await mesh.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartCoreAsync(string homelabName, ILoggerFactory? loggerFactory, CancellationToken cancellationToken)
    {
        // 1. The coordinator, with an admin credential that lives only in this process.
        string admin = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        builder.Services.AddSingleton<IHostLifetime, OwnedLifetime>(); // stopped by DisposeAsync, not by Ctrl+C
        builder.Services.AddMeshCoordinator(o =>
        {
            o.AdminCredential = admin;
            o.SqlitePath = Path.Combine(Folder, "coordinator.db");
        });
        var coordinator = builder.Build();
        coordinator.MapMeshCoordinator();
        _owned.Add(new AppHandle(coordinator));
        await coordinator.StartAsync(cancellationToken).ConfigureAwait(false);
        ControlUrl = FirstAddress(coordinator);

        // 2. A reusable auth key through the admin API.
        using (var http = new HttpClient { BaseAddress = ControlUrl })
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", admin);
            using var created = await http.PostAsJsonAsync("/api/v1/authkeys", new CreateAuthKeyRequest(Reusable: true, Description: "sidecar gateway demo"), cancellationToken).ConfigureAwait(false);
            created.EnsureSuccessStatusCode();
            AuthKey = (await created.Content.ReadFromJsonAsync<CreatedAuthKey>(cancellationToken).ConfigureAwait(false))!.Key;
        }

        // 3. The homelab node and its web service, on port 80 of its mesh address.
        var service = WebApplication.CreateSlimBuilder();
        service.Logging.ClearProviders();
        service.WebHost.UseUrls("http://127.0.0.1:0");
        service.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        service.Services.AddSingleton<IHostLifetime, OwnedLifetime>();
        var app = service.Build();
        app.UseWebSockets();
        HomelabService.Map(app, homelabName);
        _owned.Add(new AppHandle(app));
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        ServiceUrl = FirstAddress(app);

        Homelab = new MeshNode(NodeOptions(homelabName), loggerFactory);
        _owned.Add(Homelab);
        await Homelab.StartAsync(cancellationToken).ConfigureAwait(false);
        // Put the loopback service on the homelab node's mesh port 80, as `tunnelmesh join --forward 80=127.0.0.1:PORT` would.
        var forwarder = new MeshPortForwarder(Homelab, new MeshPortForwardOptions { MeshPort = 80, Target = new IPEndPoint(IPAddress.Loopback, ServiceUrl.Port) }, loggerFactory);
        _owned.Add(forwarder);
        await forwarder.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Options for another node of this mesh (UDP on 127.0.0.1, so endpoints stay on loopback).</summary>
    public MeshNodeOptions NodeOptions(string hostname) => new()
    {
        ControlUrl = ControlUrl,
        AuthKey = AuthKey,
        Hostname = hostname,
        ListenAddress = IPAddress.Loopback,
    };

    /// <summary>Waits until <paramref name="node"/> sees a peer named <paramref name="name"/> (bounded by <paramref name="cancellationToken"/>).</summary>
    public static async Task WaitForPeerAsync(MeshNode node, string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(node);
        while (node.GetStatus().FindPeer(name) is null)
        {
            await Task.Delay(20, cancellationToken).ConfigureAwait(false); // the peer map is pushed within a second of a join
        }
    }

    private static Uri FirstAddress(WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    /// <summary>Stops the homelab node, its service and the coordinator; deletes the folder.</summary>
    public async ValueTask DisposeAsync()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync().ConfigureAwait(false);
        }

        _owned.Clear();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(Folder))
        {
            Directory.Delete(Folder, recursive: true);
        }
    }

    /// <summary>
    /// A host lifetime that ignores Ctrl+C: the demo's apps are stopped by <see cref="DisposeAsync"/>
    /// after the gateway (whose own console lifetime handles Ctrl+C), so the gateway's node never
    /// sees its coordinator vanish first.
    /// </summary>
    private sealed class OwnedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class AppHandle(WebApplication app) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }
}
