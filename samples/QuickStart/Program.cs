// QuickStart: an embedded coordinator (ASP.NET Core on 127.0.0.1, SQLite in a temporary folder) and
// three mesh nodes in one process, each with its own WireGuard endpoint and userspace TCP/IP stack
// (no TUN device, no root):
//   alpha  serves a minimal API with Kestrel on its mesh address (AddMeshNode + UseMesh);
//   beta   calls it by name with HttpClient (node.CreateHttpClient());
//   gamma  runs a SOCKS5 proxy on a loopback port, and an ordinary HttpClient goes through it.
// The API answers with WhoIs: which node called. It prints what happened and exits 0.
using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net;
using TunnelMesh.Net.Admin;
using TunnelMesh.Net.Socks;

string folder = Directory.CreateTempSubdirectory("tunnelmesh-quickstart").FullName;
using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
var ct = timeout.Token;
try
{
    // 1. The coordinator: peer registry, addresses, names, the peer-map stream and the relay.
    string adminCredential = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
    var coordinatorBuilder = WebApplication.CreateSlimBuilder();
    coordinatorBuilder.Logging.ClearProviders();
    coordinatorBuilder.WebHost.UseUrls("http://127.0.0.1:0");
    coordinatorBuilder.Services.AddMeshCoordinator(o =>
    {
        o.AdminCredential = adminCredential;
        o.SqlitePath = Path.Combine(folder, "coordinator.db");
    });
    await using var coordinator = coordinatorBuilder.Build();
    coordinator.MapMeshCoordinator();
    await coordinator.StartAsync(ct);
    var url = new Uri(coordinator.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    Console.WriteLine($"coordinator   {url} (SQLite in {folder})");

    // 2. An auth key from the admin API (what `tunnelmesh authkey create --reusable` does).
    using var admin = new MeshAdminClient(url, adminCredential);
    string authKey = (await admin.CreateAuthKeyAsync(new MeshAuthKeyOptions { Reusable = true, Description = "quickstart" }, ct)).Key;

    // 3. alpha: an ASP.NET Core app whose only endpoint is port 80 of its mesh address.
    var alphaBuilder = WebApplication.CreateSlimBuilder();
    alphaBuilder.Logging.ClearProviders();
    alphaBuilder.Services.AddMeshNode(o => Join(o, "alpha"));
    alphaBuilder.WebHost.UseMesh(80);
    await using var alpha = alphaBuilder.Build();
    alpha.MapGet("/hello", (HttpContext context, MeshNode node) =>
    {
        var caller = context.GetMeshPeer(); // WhoIs: the WireGuard peer this connection came from
        return new Hello($"hello from {node.GetStatus().Self.Fqdn}", caller?.Fqdn, caller?.PublicKey.ToString(), context.Connection.RemoteIpAddress?.ToString());
    });
    await alpha.StartAsync(ct);
    var alphaNode = alpha.Services.GetRequiredService<MeshNode>();
    Console.WriteLine($"alpha         {alphaNode.GetStatus().Self.Fqdn} at {alphaNode.Address}, serving http://alpha/hello on its mesh address");

    // 4. beta and gamma: plain nodes, no DI.
    await using var beta = new MeshNode(Join(new MeshNodeOptions(), "beta"));
    await beta.StartAsync(ct);
    await using var gamma = new MeshNode(Join(new MeshNodeOptions(), "gamma"));
    await gamma.StartAsync(ct);
    Console.WriteLine($"beta, gamma   {beta.GetStatus().Self.Fqdn} at {beta.Address}, {gamma.GetStatus().Self.Fqdn} at {gamma.Address}");
    foreach (var node in new[] { alphaNode, beta, gamma })
    {
        while (node.GetStatus().Peers.Count < 2)
        {
            await Task.Delay(20, ct); // the peer map is pushed within a second of each join
        }
    }

    // 5. beta -> alpha by name, with HttpClient over the mesh.
    using (var http = beta.CreateHttpClient())
    {
        var hello = await http.GetFromJsonAsync<Hello>("http://alpha/hello", ct);
        Console.WriteLine($"beta  -> GET http://alpha/hello: \"{hello!.Message}\", caller {hello.Caller} ({hello.CallerAddress})");
        Check(hello.Caller == "beta.tunnelmesh" && hello.CallerKey == beta.PublicKey.ToString(), "alpha should see beta as the caller");
    }

    var ping = await beta.PingAsync(alphaNode.Address, TimeSpan.FromSeconds(5), ct);
    Console.WriteLine($"beta  -> ping alpha: {ping.TotalMilliseconds:F3} ms via {beta.GetStatus().FindPeer("alpha")!.Path}");

    // 6. Any program -> SOCKS5 on gamma (127.0.0.1) -> alpha by name. Here an ordinary HttpClient; curl works the same:
    //    curl --socks5-hostname 127.0.0.1:PORT http://alpha.tunnelmesh/hello
    await using (var socks = new MeshSocks5Server(gamma, new MeshSocks5Options { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) }))
    {
        await socks.StartAsync(ct);
        using var viaProxy = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy($"socks5://{socks.LocalEndPoint}"), UseProxy = true });
        var hello = await viaProxy.GetFromJsonAsync<Hello>("http://alpha.tunnelmesh/hello", ct);
        Console.WriteLine($"SOCKS5 {socks.LocalEndPoint} on gamma -> GET http://alpha.tunnelmesh/hello: caller {hello!.Caller}");
        Check(hello.Caller == "gamma.tunnelmesh", "alpha should see gamma as the caller");
    }

    // 7. What each node sees.
    foreach (var node in new[] { alphaNode, beta, gamma })
    {
        var status = node.GetStatus();
        foreach (var peer in status.Peers)
        {
            Console.WriteLine($"{status.Self.Name,-6} sees {peer.Name,-6} {peer.Addresses[0],-12} path {peer.Path,-6} last handshake {peer.LastHandshake?.ToString("HH:mm:ss") ?? "-"}");
        }
    }

    await alpha.StopAsync(ct);
    await coordinator.StopAsync(ct);
    Console.WriteLine("QuickStart finished.");
    return 0;

    MeshNodeOptions Join(MeshNodeOptions o, string name)
    {
        o.ControlUrl = url;
        o.AuthKey = authKey;
        o.Hostname = name;
        o.ListenAddress = IPAddress.Loopback; // this demo keeps all traffic on loopback
        return o;
    }
}
catch (Exception ex) when (ex is QuickStartFailed or HttpRequestException or TimeoutException or OperationCanceledException or MeshControlException)
{
    Console.Error.WriteLine($"QuickStart failed: {ex.Message}");
    return 1;
}
finally
{
    Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    Directory.Delete(folder, recursive: true);
}

static void Check(bool condition, string what)
{
    if (!condition)
    {
        throw new QuickStartFailed(what);
    }
}

/// <summary>The answer of alpha's /hello endpoint.</summary>
internal sealed record Hello(string Message, string? Caller, string? CallerKey, string? CallerAddress);

/// <summary>A check of the QuickStart failed.</summary>
internal sealed class QuickStartFailed(string message) : Exception(message);
