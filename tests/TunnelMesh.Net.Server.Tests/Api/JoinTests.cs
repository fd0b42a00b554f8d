using System.Net;
using System.Net.Http.Json;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Api;

public sealed class JoinTests
{
    [Theory]
    [InlineData("memory")]
    [InlineData("sqlite")]
    public async Task Three_joins_with_one_reusable_key_get_distinct_addresses_and_names_and_see_each_other(string store)
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync(storeKind: store);
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true, Tags: ["tag:web"]));
        Assert.StartsWith($"tmkey-{key.Info.Id}-", key.Key, StringComparison.Ordinal);

        var joins = new List<JoinResponse>();
        for (int i = 0; i < 3; i++)
        {
            joins.Add(await host.JoinAsync(key.Key, "Build Box"));
        }

        Assert.Equal(["build-box", "build-box-2", "build-box-3"], joins.Select(j => j.Self.Name));
        Assert.Equal(["100.64.0.1", "100.64.0.2", "100.64.0.3"], joins.Select(j => j.Self.Addresses[0]));
        Assert.Equal("fd74:6d65:7368::6440:3", joins[2].Self.Addresses[1]);
        Assert.Equal("build-box-2.tunnelmesh", joins[1].Self.Fqdn);
        Assert.All(joins, j => Assert.Equal(["tag:web"], j.Self.Tags));
        Assert.All(joins, j => Assert.StartsWith($"tmnode-{j.Self.Id}-", j.NodeToken, StringComparison.Ordinal));
        Assert.Equal(3, joins.Select(j => j.NodeToken).Distinct().Count());
        Assert.Equal(new MeshInfo("100.64.0.0/10", "fd74:6d65:7368::/48", "tunnelmesh", []), joins[0].Mesh with { StunEndpoints = [] });
        Assert.Equal(2, joins[2].Map.Peers!.Count);

        foreach (JoinResponse j in joins)
        {
            await using MapStream map = await host.OpenMapAsync(j.NodeToken);
            PeerMapMessage snapshot = (await map.ReceiveAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token))!;
            Assert.Equal(PeerMapMessageType.Snapshot, snapshot.Type);
            string[] expected = [.. joins.Where(o => o != j).Select(o => o.Self.PublicKey).Order()];
            Assert.Equal(expected, snapshot.Peers!.Select(p => p.PublicKey).Order());
            Assert.DoesNotContain(snapshot.Peers!, p => p.PublicKey == j.Self.PublicKey);
        }
    }

    [Theory]
    [InlineData("memory")]
    [InlineData("sqlite")]
    public async Task The_same_node_key_gets_its_address_back_by_auth_key_or_node_token_and_the_old_token_stops_working(string store)
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync(storeKind: store);
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        string nodeKey = CoordinatorHost.NewNodeKey();
        JoinResponse first = await host.JoinAsync(key.Key, "laptop", nodeKey);
        await host.JoinAsync(key.Key, "laptop");
        JoinResponse again = await host.JoinAsync(key.Key, "laptop", nodeKey);
        Assert.Equal(first.Self.Id, again.Self.Id);
        Assert.Equal(first.Self.Addresses, again.Self.Addresses);
        Assert.Equal("laptop", again.Self.Name);

        HttpResponseMessage r = await host.PostJoinAsync(new JoinRequest(null, nodeKey, "laptop", NodeToken: again.NodeToken));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        JoinResponse byToken = (await r.Content.ReadFromJsonAsync<JoinResponse>(CoordinatorHost.Json))!;
        Assert.Equal(first.Self.Addresses, byToken.Self.Addresses);

        // The earlier token was replaced: it neither re-joins nor opens the map.
        HttpResponseMessage stale = await host.PostJoinAsync(new JoinRequest(null, nodeKey, "laptop", NodeToken: again.NodeToken));
        Assert.Contains("node token invalid", (await CoordinatorHost.ProblemAsync(stale, HttpStatusCode.Unauthorized)).Detail, StringComparison.Ordinal);
        HttpResponseMessage endpoints = await PutEndpointsAsync(host, again.NodeToken, ["192.0.2.7:1"]);
        await CoordinatorHost.ProblemAsync(endpoints, HttpStatusCode.Unauthorized);

        // A token does not re-join another node key.
        HttpResponseMessage other = await host.PostJoinAsync(new JoinRequest(null, CoordinatorHost.NewNodeKey(), "x", NodeToken: byToken.NodeToken));
        await CoordinatorHost.ProblemAsync(other, HttpStatusCode.Unauthorized);
    }

    [Theory]
    [InlineData("memory")]
    [InlineData("sqlite")]
    public async Task Revoked_expired_used_unknown_and_malformed_keys_are_refused_with_the_reason(string store)
    {
        var time = new FakeTimeProvider();
        await using CoordinatorHost host = await CoordinatorHost.StartAsync(time: time, storeKind: store);

        CreatedAuthKey revoked = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        Assert.Equal(HttpStatusCode.NoContent, (await host.Admin.DeleteAsync($"/api/v1/authkeys/{revoked.Info.Id}")).StatusCode);
        Assert.Contains("auth key revoked", await RefusedAsync(host, revoked.Key, HttpStatusCode.Forbidden), StringComparison.Ordinal);

        CreatedAuthKey shortLived = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true, ExpiresInSeconds: 60));
        await host.JoinAsync(shortLived.Key, "early");
        time.Advance(TimeSpan.FromSeconds(61));
        Assert.Contains("auth key expired", await RefusedAsync(host, shortLived.Key, HttpStatusCode.Forbidden), StringComparison.Ordinal);

        CreatedAuthKey oneShot = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: false));
        await host.JoinAsync(oneShot.Key, "once");
        Assert.Contains("auth key already used", await RefusedAsync(host, oneShot.Key, HttpStatusCode.Forbidden), StringComparison.Ordinal);

        string wrongSecret = oneShot.Key[..^4] + (oneShot.Key.EndsWith("0000", StringComparison.Ordinal) ? "1111" : "0000");
        Assert.Contains("auth key not found", await RefusedAsync(host, wrongSecret, HttpStatusCode.Unauthorized), StringComparison.Ordinal);
        Assert.Contains("auth key not found", await RefusedAsync(host, "tmkey-999-" + new string('a', 64), HttpStatusCode.Unauthorized), StringComparison.Ordinal);
        Assert.Contains("malformed", await RefusedAsync(host, "not-a-key", HttpStatusCode.Unauthorized), StringComparison.Ordinal);
        Assert.Contains("required", await RefusedAsync(host, null, HttpStatusCode.Unauthorized), StringComparison.Ordinal);

        // The listing shows the uses and the revocation, and never a secret.
        string list = await host.Admin.GetStringAsync("/api/v1/authkeys");
        Assert.DoesNotContain(oneShot.Key[^64..], list, StringComparison.Ordinal);
        List<AuthKeyInfo> keys = (await host.Admin.GetFromJsonAsync<List<AuthKeyInfo>>("/api/v1/authkeys", CoordinatorHost.Json))!;
        Assert.NotNull(keys.Single(k => k.Id == revoked.Info.Id).Revoked);
        Assert.Equal(1, keys.Single(k => k.Id == oneShot.Info.Id).Uses);
        Assert.Equal(time.GetUtcNow() - TimeSpan.FromSeconds(61) + TimeSpan.FromSeconds(60), keys.Single(k => k.Id == shortLived.Info.Id).Expires);
    }

    [Theory]
    [InlineData("short", "laptop", null, "nodeKey")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "laptop", null, "nodeKey")] // 43 characters
    [InlineData("!!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "laptop", null, "nodeKey")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "laptop", null, "nodeKey: a small-order")] // 0
    [InlineData("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "laptop", null, "nodeKey: a small-order")] // 1
    [InlineData("4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=", "laptop", null, "nodeKey: a small-order")] // order 8
    [InlineData("X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEVc=", "laptop", null, "nodeKey: a small-order")] // order 8
    [InlineData("7P///////////////////////////////////////38=", "laptop", null, "nodeKey: a small-order")] // p - 1
    [InlineData("7f///////////////////////////////////////38=", "laptop", null, "nodeKey: a non-canonical")] // p (0 again)
    [InlineData("7v///////////////////////////////////////38=", "laptop", null, "nodeKey: a non-canonical")] // p + 1 (1 again)
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA=", "laptop", null, "nodeKey: a non-canonical")] // 0 with the top bit set
    [InlineData(null, "   ", null, "hostname")]
    [InlineData(null, "laptop", "192.0.2.1", "endpoints[0]")]
    [InlineData(null, "laptop", "example.com:80", "endpoints[0]")]
    [InlineData(null, "laptop", "192.0.2.1:0", "endpoints[0]")]
    [InlineData(null, "laptop", "::1:5", "endpoints[0]")]
    public async Task Bad_join_fields_are_refused_with_400_naming_the_field(string? nodeKey, string hostname, string? endpoint, string field)
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        HttpResponseMessage r = await host.PostJoinAsync(new JoinRequest(key.Key, nodeKey ?? CoordinatorHost.NewNodeKey(), hostname, endpoint is null ? [] : [endpoint]));
        Assert.StartsWith(field, (await CoordinatorHost.ProblemAsync(r, HttpStatusCode.BadRequest)).Detail, StringComparison.Ordinal);
        Assert.Empty(await host.Store.ListNodesAsync());
    }

    [Fact]
    public async Task Too_many_endpoints_missing_fields_and_bad_json_are_400_and_a_good_endpoint_list_is_kept()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        string[] seventeen = [.. Enumerable.Range(1, 17).Select(i => $"192.0.2.{i}:51820")];
        HttpResponseMessage many = await host.PostJoinAsync(new JoinRequest(key.Key, CoordinatorHost.NewNodeKey(), "a", seventeen));
        Assert.Contains("at most 16", (await CoordinatorHost.ProblemAsync(many, HttpStatusCode.BadRequest)).Detail, StringComparison.Ordinal);

        HttpResponseMessage missing = await host.Client.PostAsync("/api/v1/join", new StringContent("{\"authKey\":\"x\",\"hostname\":\"a\"}", Encoding.UTF8, "application/json"));
        Assert.Contains("JoinRequest", (await CoordinatorHost.ProblemAsync(missing, HttpStatusCode.BadRequest)).Detail, StringComparison.Ordinal);
        HttpResponseMessage broken = await host.Client.PostAsync("/api/v1/join", new StringContent("{not json", Encoding.UTF8, "application/json"));
        await CoordinatorHost.ProblemAsync(broken, HttpStatusCode.BadRequest);
        HttpResponseMessage empty = await host.Client.PostAsync("/api/v1/join", new StringContent("", Encoding.UTF8, "application/json"));
        await CoordinatorHost.ProblemAsync(empty, HttpStatusCode.BadRequest);

        JoinResponse ok = (await (await host.PostJoinAsync(new JoinRequest(key.Key, CoordinatorHost.NewNodeKey(), "a", ["[2001:db8::1]:51820", "192.0.2.9:4000", "192.0.2.9:4000"]))).Content.ReadFromJsonAsync<JoinResponse>(CoordinatorHost.Json))!;
        Assert.Equal(["[2001:db8::1]:51820", "192.0.2.9:4000"], ok.Self.Endpoints);
    }

    [Fact]
    public async Task An_oversized_body_is_413_with_or_without_a_content_length()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync(o => o.MaxRequestBodyBytes = 1024);
        string big = "{\"authKey\":\"" + new string('x', 4000) + "\",\"nodeKey\":\"k\",\"hostname\":\"h\"}";
        HttpResponseMessage sized = await host.Client.PostAsync("/api/v1/join", new StringContent(big, Encoding.UTF8, "application/json"));
        Assert.Contains("1024 bytes", (await CoordinatorHost.ProblemAsync(sized, HttpStatusCode.RequestEntityTooLarge)).Detail, StringComparison.Ordinal);

        HttpResponseMessage chunked = await host.Client.PostAsync("/api/v1/join", new UnsizedContent(Encoding.UTF8.GetBytes(big)));
        await CoordinatorHost.ProblemAsync(chunked, HttpStatusCode.RequestEntityTooLarge);

        var admin = new HttpRequestMessage(HttpMethod.Post, "/api/v1/authkeys") { Content = new StringContent("{\"description\":\"" + new string('d', 2000) + "\"}", Encoding.UTF8, "application/json") };
        await CoordinatorHost.ProblemAsync(await host.Admin.SendAsync(admin), HttpStatusCode.RequestEntityTooLarge);
    }

    [Fact]
    public async Task Joins_beyond_the_per_address_rate_are_429_with_the_reason()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync(o => o.JoinPermitsPerMinute = 2);
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (int i = 0; i < 10; i++)
        {
            HttpResponseMessage r = await PostJoinFromAsync(host, "192.0.2.10", new JoinRequest(key.Key, CoordinatorHost.NewNodeKey(), $"n{i}"));
            statuses.Add(r.StatusCode);
            if (r.StatusCode == HttpStatusCode.TooManyRequests)
            {
                limited ??= r;
            }
        }

        // Two permits, two more per minute: of ten joins in a row at most four pass.
        Assert.Equal(HttpStatusCode.OK, statuses[0]);
        Assert.True(statuses.Count(s => s == HttpStatusCode.TooManyRequests) >= 6, string.Join(",", statuses));
        Assert.Contains("Too many joins", (await CoordinatorHost.ProblemAsync(limited!, HttpStatusCode.TooManyRequests)).Detail, StringComparison.Ordinal);
        Assert.Equal(statuses.Count(s => s == HttpStatusCode.OK), (await host.Store.ListNodesAsync()).Count);

        // Another client address has its own permits.
        HttpResponseMessage other = await PostJoinFromAsync(host, "192.0.2.11", new JoinRequest(key.Key, CoordinatorHost.NewNodeKey(), "other"));
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
    }

    private static Task<HttpResponseMessage> PostJoinFromAsync(CoordinatorHost host, string clientAddress, JoinRequest request)
    {
        var m = new HttpRequestMessage(HttpMethod.Post, "/api/v1/join") { Content = JsonContent.Create(request, options: CoordinatorHost.Json) };
        m.Headers.Add(CoordinatorHost.ClientAddressHeader, clientAddress);
        return host.Client.SendAsync(m);
    }

    [Fact]
    public async Task A_full_mesh_refuses_new_nodes_with_409_but_lets_known_ones_rejoin()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync(o => o.MaxNodes = 2);
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        string first = CoordinatorHost.NewNodeKey();
        await host.JoinAsync(key.Key, "a", first);
        await host.JoinAsync(key.Key, "b");
        var broadcaster = (TunnelMesh.Net.Server.Api.PeerMapBroadcaster)host.Services.GetService(typeof(TunnelMesh.Net.Server.Api.PeerMapBroadcaster))!;
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while (broadcaster.Current?.Nodes.Count != 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        HttpResponseMessage third = await host.PostJoinAsync(new JoinRequest(key.Key, CoordinatorHost.NewNodeKey(), "c"));
        Assert.Contains("MaxNodes", (await CoordinatorHost.ProblemAsync(third, HttpStatusCode.Conflict)).Detail, StringComparison.Ordinal);
        await host.JoinAsync(key.Key, "a", first);
    }

    [Fact]
    public async Task Endpoint_updates_need_the_node_token_and_reach_the_peers()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        JoinResponse a = await host.JoinAsync(key.Key, "a");
        JoinResponse b = await host.JoinAsync(key.Key, "b");
        await using MapStream map = await host.OpenMapAsync(a.NodeToken, viaQuery: true);
        await map.WaitUntilAsync(m => m.Peers.ContainsKey(b.Self.PublicKey), "b in the snapshot");

        await CoordinatorHost.ProblemAsync(await PutEndpointsAsync(host, null, ["192.0.2.5:1"]), HttpStatusCode.Unauthorized);
        await CoordinatorHost.ProblemAsync(await PutEndpointsAsync(host, b.NodeToken, ["nonsense"]), HttpStatusCode.BadRequest);
        Assert.Equal(HttpStatusCode.NoContent, (await PutEndpointsAsync(host, b.NodeToken, ["198.51.100.7:41641"])).StatusCode);
        await map.WaitUntilAsync(m => m.Peers[b.Self.PublicKey].Endpoints.SequenceEqual(["198.51.100.7:41641"]), "b's new endpoint");
    }

    [Fact]
    public async Task Health_answers_without_credentials()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        await host.JoinAsync(key.Key, "a");
        HealthResponse h = (await host.Client.GetFromJsonAsync<HealthResponse>("/api/v1/health", CoordinatorHost.Json))!;
        Assert.Equal("ok", h.Status);
        Assert.Equal(1, h.Nodes);
        Assert.True(h.Version >= 1);
    }

    [Fact]
    public async Task No_secret_appears_in_any_log_line()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: false));
        JoinResponse a = await host.JoinAsync(key.Key, "a");
        await RefusedAsync(host, key.Key, HttpStatusCode.Forbidden);
        await using (MapStream map = await host.OpenMapAsync(a.NodeToken))
        {
            await map.WaitUntilAsync(m => m.Messages == 1, "snapshot");
        }

        using var wrongAdmin = host.Server.CreateClient();
        wrongAdmin.DefaultRequestHeaders.Authorization = new("Bearer", "wrong-credential-but-long-enough-0001");
        await wrongAdmin.GetAsync("/api/v1/nodes");
        await PutEndpointsAsync(host, a.NodeToken + "x", []);

        string[] secrets = [key.Key[^64..], a.NodeToken[^64..], CoordinatorHost.AdminCredential, "wrong-credential-but-long-enough-0001"];
        Assert.Contains(host.Logs.Lines, l => l.Contains("joined", StringComparison.Ordinal));
        Assert.Contains(host.Logs.Lines, l => l.Contains("refused", StringComparison.Ordinal));
        foreach (string line in host.Logs.Lines)
        {
            foreach (string s in secrets)
            {
                Assert.DoesNotContain(s, line, StringComparison.Ordinal);
            }
        }
    }

    internal static Task<HttpResponseMessage> PutEndpointsAsync(CoordinatorHost host, string? token, string[] endpoints)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, "/api/v1/nodes/self/endpoints") { Content = JsonContent.Create(new EndpointUpdate(endpoints), options: CoordinatorHost.Json) };
        if (token is not null)
        {
            request.Headers.Authorization = new("Bearer", token);
        }

        return host.Client.SendAsync(request);
    }

    private static async Task<string> RefusedAsync(CoordinatorHost host, string? authKey, HttpStatusCode status)
    {
        HttpResponseMessage r = await host.PostJoinAsync(new JoinRequest(authKey, CoordinatorHost.NewNodeKey(), "refused"));
        return (await CoordinatorHost.ProblemAsync(r, status)).Detail!;
    }

    private sealed class UnsizedContent(byte[] bytes) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(bytes).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
