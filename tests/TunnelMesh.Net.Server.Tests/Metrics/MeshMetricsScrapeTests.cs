using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Forwarding;
using TunnelMesh.Net.Server.Api;
using TunnelMesh.Net.Server.Relay;
using TunnelMesh.Net.Server.Tests.EndToEnd;
using TunnelMesh.Net.Server.Tests.Support;
using TunnelMesh.Net.Socks;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Server.Tests.Metrics;

/// <summary>
/// A coordinator on Kestrel (127.0.0.1) with <c>AddMeshMetrics</c> and <c>MapMeshMetrics</c>; two nodes in
/// this process join it and, with direct UDP between them blocked, talk through its relay. <c>/metrics</c>
/// is scraped before and after, and the coordinator's, the relay's and the nodes' counters have moved; a port
/// forwarder and a SOCKS5 proxy on those nodes show up in the same scrape. The names scraped are the
/// ones docs/METRICS.md lists and docs/grafana/tunnelmesh.json queries, both ways.
/// </summary>
[Collection(nameof(MetricsCollection))]
public sealed partial class MeshMetricsScrapeTests
{
    private const int TransferSize = 256 * 1024;

    [Fact]
    public async Task Scraping_metrics_twice_finds_joins_map_streams_relay_bytes_and_node_counters_moving()
    {
        DirectoryInfo root = Directory.CreateTempSubdirectory("tm-metrics-");
        await using WebApplication app = await StartCoordinatorAsync(Path.Combine(root.FullName, "mesh.db"));
        var url = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        using var http = new HttpClient { BaseAddress = url };
        http.DefaultRequestHeaders.Authorization = new("Bearer", CoordinatorHost.AdminCredential);
        var nodes = new List<MeshNode>();
        try
        {
            PrometheusScrape before = await PrometheusScrape.GetAsync(http);

            // A refused join (a well-formed auth key that does not exist) and two nodes that join.
            HttpResponseMessage refused = await http.PostAsJsonAsync(
                "/api/v1/join", new JoinRequest("tmkey-999-" + new string('x', 43), CoordinatorHost.NewNodeKey(), "nobody", []), CoordinatorHost.Json);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            HttpResponseMessage created = await http.PostAsJsonAsync("/api/v1/authkeys", new CreateAuthKeyRequest(Reusable: true), CoordinatorHost.Json);
            string key = (await created.Content.ReadFromJsonAsync<CreatedAuthKey>(CoordinatorHost.Json))!.Key;

            var nodePorts = new ConcurrentDictionary<int, bool>();
            MeshNode a = await StartNodeAsync(url, "left", key, nodePorts, nodes);
            MeshNode b = await StartNodeAsync(url, "right", key, nodePorts, nodes);
            await KestrelMesh.PeerAsync(a, "right");
            await KestrelMesh.PeerAsync(b, "left");
            await using (MeshTcpListener listener = await b.ListenAsync(7500))
            {
                await KestrelMesh.TransferAsync(a, "right", listener, TransferSize, seed: 7);
            }

            Assert.Equal(MeshPeerPath.Relay, a.GetStatus().FindPeer("right")!.Path);

            // A port forwarder on right (mesh port 5432 to a loopback listener) carries one connection; a SOCKS5 proxy on left just listens.
            using var target = new TcpListener(IPAddress.Loopback, 0);
            target.Start();
            await using var forwarder = new MeshPortForwarder(b, new MeshPortForwardOptions { MeshPort = 5432, Target = target.LocalEndpoint });
            await forwarder.StartAsync();
            await using var socks = new MeshSocks5Server(a, new MeshSocks5Options { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) });
            await socks.StartAsync();
            await using (MeshTcpStream stream = await a.DialAsync("right", 5432).WaitAsync(KestrelMesh.Deadline))
            {
                using Socket accepted = await target.AcceptSocketAsync().WaitAsync(KestrelMesh.Deadline);
                await stream.WriteAsync(new byte[100]);
                await KestrelMesh.UntilAsync(() => forwarder.GetStatistics().BytesToTarget == 100, "the forwarder counted 100 bytes to the target");
            }

            // A third node joined by hand on the relay: a frame to a key nobody holds is dropped, a second
            // connection with its key replaces the first, and a request with the admin credential instead of a node token is refused.
            HttpResponseMessage joined = await http.PostAsJsonAsync("/api/v1/join", new JoinRequest(key, CoordinatorHost.NewNodeKey(), "raw", []), CoordinatorHost.Json);
            string rawToken = (await joined.Content.ReadFromJsonAsync<JoinResponse>(CoordinatorHost.Json))!.NodeToken;
            RelayHub hub = app.Services.GetRequiredService<RelayHub>();
            RelayHubStatistics relayBefore = hub.Statistics;
            using ClientWebSocket first = await ConnectRelayAsync(url, rawToken);
            await first.SendAsync(new byte[RelayHub.KeyLength + 8], WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None);
            await KestrelMesh.UntilAsync(() => hub.Statistics.DroppedUnknownDestination > relayBefore.DroppedUnknownDestination, "the relay dropped the frame to an unknown key");
            using ClientWebSocket second = await ConnectRelayAsync(url, rawToken);
            await KestrelMesh.UntilAsync(() => hub.Statistics.Replaced > relayBefore.Replaced, "the second relay connection replaced the first");
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/v1/relay")).StatusCode);

            // The broadcaster publishes the third node's map version on its own loop: wait for it.
            PeerMapBroadcaster broadcaster = app.Services.GetRequiredService<PeerMapBroadcaster>();
            await KestrelMesh.UntilAsync(() => broadcaster.Current?.Nodes.Count == 3, "the map holds three nodes");

            PrometheusScrape after = await PrometheusScrape.GetAsync(http);
            string both = "before:\n" + before.Text + "\nafter:\n" + after.Text;
            if (Environment.GetEnvironmentVariable("TM_METRICS_DUMP") is { } dump)
            {
                await File.WriteAllTextAsync(dump, both);
            }

            // The coordinator: joins by result, map streams open, the map version and the node count.
            Assert.True(
                Moved(before, after, "tunnelmesh_coordinator_joins_total", ("result", "joined")) == 3,
                "three joins counted as joined\n" + both);
            Assert.True(
                Moved(before, after, "tunnelmesh_coordinator_joins_total", ("result", "refused"), ("reason", "auth_key_refused")) == 1,
                "one join refused for its auth key\n" + both);
            Assert.True(after.Sum("tunnelmesh_coordinator_map_streams") - before.Sum("tunnelmesh_coordinator_map_streams") == 2, "two map streams open\n" + both);
            Assert.True(after.Sum("tunnelmesh_coordinator_map_version") > before.Sum("tunnelmesh_coordinator_map_version"), "the map version moved\n" + both);
            Assert.True(after.Sum("tunnelmesh_coordinator_nodes") == 3, "three nodes in the map\n" + both);

            // The relay carried the transfer (direct UDP was blocked), so its byte and frame counters moved by at least that much.
            Assert.True(Moved(before, after, "tunnelmesh_relay_forwarded_bytes_total") >= TransferSize, "the relay forwarded the transfer's bytes\n" + both);
            Assert.True(Moved(before, after, "tunnelmesh_relay_forwarded_total") > 0, "the relay forwarded frames\n" + both);
            Assert.True(after.Sum("tunnelmesh_relay_connections") == 3, "three nodes hold a relay connection\n" + both);
            Assert.True(Moved(before, after, "tunnelmesh_relay_dropped_total", ("reason", "unknown_destination")) >= 1, "the frame to an unknown key\n" + both);
            Assert.True(Moved(before, after, "tunnelmesh_relay_replaced_total") >= 1, "the replaced connection\n" + both);
            Assert.True(Moved(before, after, "tunnelmesh_relay_refused_total") >= 1, "the refused relay request\n" + both);

            // The node meter of a node in this process: what left sent to right, by node and peer labels.
            string left = a.PublicKey.ToString();
            string right = b.PublicKey.ToString();
            Assert.True(after.Sum("tunnelmesh_peer_sent_bytes_total", ("node", left), ("peer", right)) >= TransferSize, "left's bytes sent to right\n" + both);
            Assert.True(after.Sum("tunnelmesh_peer_handshakes_total", ("node", left), ("peer", right)) >= 1, "left's handshake with right\n" + both);
            Assert.Equal(0, before.Sum("tunnelmesh_peer_sent_bytes_total", ("node", left)));

            // The forwarder's and the proxy's meters, labelled with their endpoints.
            string forwarded = forwarder.LocalEndPoint.ToString();
            Assert.Equal(1, after.Sum("tunnelmesh_forward_connections_accepted_total", ("endpoint", forwarded)));
            Assert.Equal(100, after.Sum("tunnelmesh_forward_bytes_total", ("endpoint", forwarded), ("direction", "to_target")));
            Assert.True(after.Has("tunnelmesh_forward_connections_active"), "the forwarder's active connections\n" + both);
            string proxy = socks.LocalEndPoint.ToString();
            Assert.Contains(after.Samples, x => x.Name == "tunnelmesh_socks5_connections_accepted_total" && x.Labels.TryGetValue("endpoint", out string? e) && e == proxy && x.Value == 0);
            Assert.True(after.Has("tunnelmesh_socks5_bytes_total") && after.Has("tunnelmesh_socks5_connections_active"), "the proxy's instruments\n" + both);

            // Every TunnelMesh name of the scrape is documented and on the dashboard, and the dashboard queries no other.
            HashSet<string> exported = [.. after.Types.Keys.Where(n => n.StartsWith("tunnelmesh_", StringComparison.Ordinal))];
            string metricsDoc = await File.ReadAllTextAsync(Path.Combine(RepoRoot(), "docs", "METRICS.md"));
            string dashboard = await File.ReadAllTextAsync(Path.Combine(RepoRoot(), "docs", "grafana", "tunnelmesh.json"));
            HashSet<string> queried = [.. TunnelMeshName().Matches(dashboard).Select(m => m.Value)];
            Assert.DoesNotContain(exported, n => !metricsDoc.Contains("`" + n, StringComparison.Ordinal));
            Assert.Empty(exported.Except(queried));
            Assert.Empty(queried.Except(exported));
        }
        finally
        {
            for (int i = nodes.Count - 1; i >= 0; i--)
            {
                await nodes[i].DisposeAsync();
            }

            await app.StopAsync();
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            root.Delete(recursive: true);
        }
    }

    private static async Task<ClientWebSocket> ConnectRelayAsync(Uri coordinator, string nodeToken)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", "Bearer " + nodeToken);
        using var cts = new CancellationTokenSource(KestrelMesh.Deadline);
        await socket.ConnectAsync(new Uri($"ws://{coordinator.Authority}/api/v1/relay"), cts.Token);
        return socket;
    }

    private static string RepoRoot()
    {
        DirectoryInfo? dir = new(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "TunnelMesh.Net.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("no TunnelMesh.Net.sln above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex("tunnelmesh_[a-z0-9_]+")]
    private static partial Regex TunnelMeshName();

    private static double Moved(PrometheusScrape before, PrometheusScrape after, string name, params (string, string)[] labels) =>
        after.Sum(name, labels) - before.Sum(name, labels);

    private static async Task<WebApplication> StartCoordinatorAsync(string sqlitePath)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        builder.Services.AddMeshCoordinator(o =>
        {
            o.AdminCredential = CoordinatorHost.AdminCredential;
            o.SqlitePath = sqlitePath;
        });

        // No response cache: the second scrape must see the counters of now.
        builder.Services.AddMeshMetrics(o => o.ScrapeResponseCacheDurationMilliseconds = 0);
        WebApplication app = builder.Build();
        app.MapMeshCoordinator();
        app.MapMeshMetrics();
        await app.StartAsync();
        return app;
    }

    /// <summary>A node on 127.0.0.1 whose UDP datagrams to and from the other test nodes are dropped, so peers talk through the relay.</summary>
    private static async Task<MeshNode> StartNodeAsync(Uri url, string hostname, string key, ConcurrentDictionary<int, bool> nodePorts, List<MeshNode> nodes)
    {
        var options = new MeshNodeOptions { ControlUrl = url, AuthKey = key, Hostname = hostname, ListenAddress = IPAddress.Loopback };
        var node = new MeshNode(options, null, null, (o, pool, drops) =>
        {
            var udp = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, Pool = pool, Drops = drops });
            nodePorts[udp.LocalPort] = true;
            return new FaultInjectingTransport(udp, seed: 1, pool) { Block = e => nodePorts.ContainsKey(e.Port) };
        });
        nodes.Add(node);
        using var cts = new CancellationTokenSource(KestrelMesh.Deadline);
        await node.StartAsync(cts.Token);
        return node;
    }
}
