using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Admin;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.EndToEnd;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Admin;

/// <summary>MeshAdminClient against the real coordinator: on the test server for every method and refusal, on Kestrel with real nodes.</summary>
public sealed class MeshAdminClientTests
{
    private static readonly Uri TestServerUrl = new("http://localhost/");

    private static MeshAdminClient Client(CoordinatorHost host, string credential = CoordinatorHost.AdminCredential) =>
        new(TestServerUrl, credential, host.Server.CreateHandler());

    [Fact]
    public async Task Creates_lists_and_revokes_auth_keys()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        using MeshAdminClient admin = Client(host);

        CreatedAuthKey created = await admin.CreateAuthKeyAsync(new MeshAuthKeyOptions
        {
            Ephemeral = true,
            ExpiresIn = TimeSpan.FromHours(1),
            Tags = ["tag:customer-42", "tag:homelab"],
            Description = "customer 42",
        });
        Assert.StartsWith($"tmkey-{created.Info.Id}-", created.Key, StringComparison.Ordinal);
        Assert.False(created.Info.Reusable);
        Assert.True(created.Info.Ephemeral);
        Assert.Equal(["tag:customer-42", "tag:homelab"], created.Info.Tags);
        Assert.Equal("customer 42", created.Info.Description);
        Assert.Equal(TimeSpan.FromHours(1), created.Info.Expires - created.Info.Created);

        // A fraction of a second is rounded up; no options means the coordinator's default lifetime.
        CreatedAuthKey rounded = await admin.CreateAuthKeyAsync(new MeshAuthKeyOptions { Reusable = true, ExpiresIn = TimeSpan.FromMilliseconds(1500) });
        Assert.True(rounded.Info.Reusable);
        Assert.Equal(TimeSpan.FromSeconds(2), rounded.Info.Expires - rounded.Info.Created);
        CreatedAuthKey plain = await admin.CreateAuthKeyAsync(new MeshAuthKeyOptions());
        Assert.Equal(TimeSpan.FromHours(24), plain.Info.Expires - plain.Info.Created);
        Assert.Empty(plain.Info.Tags);

        IReadOnlyList<AuthKeyInfo> keys = await admin.ListAuthKeysAsync();
        Assert.Equal([created.Info.Id, rounded.Info.Id, plain.Info.Id], keys.Select(k => k.Id).Order());
        Assert.All(keys, k => Assert.Null(k.Revoked));
        Assert.DoesNotContain(keys, k => created.Key.StartsWith(k.Prefix, StringComparison.Ordinal) && k.Prefix.Length >= created.Key.Length);

        await admin.RevokeAuthKeyAsync(created.Info.Id);
        Assert.NotNull((await admin.ListAuthKeysAsync()).Single(k => k.Id == created.Info.Id).Revoked);
        HttpResponseMessage join = await host.PostJoinAsync(new JoinRequest(created.Key, CoordinatorHost.NewNodeKey(), "late"));
        Assert.Contains("revoked", (await CoordinatorHost.ProblemAsync(join, HttpStatusCode.Forbidden)).Detail, StringComparison.Ordinal);

        MeshAdminException missing = await Assert.ThrowsAsync<MeshAdminException>(() => admin.RevokeAuthKeyAsync(99));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.True(missing.IsNotFound);
        Assert.Equal("No auth key 99.", missing.Detail);
        Assert.Equal("revoking auth key 99", missing.Operation);
    }

    [Fact]
    public async Task Lists_gets_finds_renames_expires_and_deletes_nodes()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        using MeshAdminClient admin = Client(host);
        CreatedAuthKey key = await admin.CreateAuthKeyAsync(new MeshAuthKeyOptions { Reusable = true, Tags = ["tag:paas"] });
        JoinResponse alpha = await host.JoinAsync(key.Key, "alpha");
        JoinResponse beta = await host.JoinAsync(key.Key, "beta");

        IReadOnlyList<MeshNodeInfo> nodes = await admin.ListNodesAsync();
        Assert.Equal(["alpha", "beta"], nodes.Select(n => n.Name).Order());
        Assert.All(nodes, n => Assert.Equal(["tag:paas"], n.Tags));

        MeshNodeInfo got = await admin.GetNodeAsync(beta.Self.Id);
        Assert.Equal(beta.Self.PublicKey, got.PublicKey);
        Assert.Equal(beta.Self.Addresses, got.Addresses);
        Assert.False(got.Online);

        Assert.Equal(alpha.Self.Id, (await admin.FindNodeAsync("ALPHA"))?.Id);
        Assert.Equal(alpha.Self.Id, (await admin.FindNodeAsync("alpha.tunnelmesh."))?.Id);
        Assert.Equal(beta.Self.Id, (await admin.FindNodeAsync(beta.Self.PublicKey))?.Id);
        Assert.Equal(beta.Self.Id, (await admin.FindNodeAsync(NodePublicKey.Parse(beta.Self.PublicKey)))?.Id);
        Assert.Null(await admin.FindNodeAsync("gamma"));

        MeshNodeInfo renamed = await admin.RenameNodeAsync(beta.Self.Id, "homelab-42");
        Assert.Equal("homelab-42", renamed.Name);
        Assert.Equal("homelab-42.tunnelmesh", renamed.Fqdn);
        Assert.Equal(beta.Self.Id, (await admin.FindNodeAsync("homelab-42"))?.Id);
        MeshAdminException taken = await Assert.ThrowsAsync<MeshAdminException>(() => admin.RenameNodeAsync(beta.Self.Id, "alpha"));
        Assert.Equal(HttpStatusCode.Conflict, taken.StatusCode);
        Assert.Contains("another node", taken.Reason, StringComparison.Ordinal);
        MeshAdminException invalid = await Assert.ThrowsAsync<MeshAdminException>(() => admin.RenameNodeAsync(beta.Self.Id, "Not A Label"));
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.StartsWith("name:", invalid.Detail, StringComparison.Ordinal);

        await admin.ExpireNodeAsync(alpha.Self.Id);
        Assert.True((await admin.GetNodeAsync(alpha.Self.Id)).Expired);
        Assert.True((await admin.FindNodeAsync("alpha"))?.Expired);

        await admin.DeleteNodeAsync(beta.Self.Id);
        Assert.Null(await admin.FindNodeAsync("homelab-42"));
        Assert.Equal(["alpha"], (await admin.ListNodesAsync()).Select(n => n.Name));
        Assert.Equal(HttpStatusCode.NotFound, (await Assert.ThrowsAsync<MeshAdminException>(() => admin.DeleteNodeAsync(beta.Self.Id))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Assert.ThrowsAsync<MeshAdminException>(() => admin.ExpireNodeAsync(beta.Self.Id))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Assert.ThrowsAsync<MeshAdminException>(() => admin.RenameNodeAsync(beta.Self.Id, "x"))).StatusCode);
    }

    [Fact]
    public async Task A_missing_node_is_404_with_the_reason()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        using MeshAdminClient admin = Client(host);

        MeshAdminException e = await Assert.ThrowsAsync<MeshAdminException>(() => admin.GetNodeAsync(99));
        Assert.Equal(HttpStatusCode.NotFound, e.StatusCode);
        Assert.True(e.IsNotFound);
        Assert.False(e.IsUnauthorized);
        Assert.Equal("No node 99.", e.Detail);
        Assert.Equal("No node 99.", e.Reason);
        Assert.Equal("Not Found", e.Title);
        Assert.Equal("The coordinator refused getting node 99: No node 99. (HTTP 404)", e.Message);
    }

    [Fact]
    public async Task Bad_tags_and_lifetimes_are_400_with_the_field()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        using MeshAdminClient admin = Client(host);

        foreach (string tag in new[] { "customer-42", "tag:Customer", "tag:", "tag:-x" })
        {
            MeshAdminException e = await Assert.ThrowsAsync<MeshAdminException>(() => admin.CreateAuthKeyAsync(new MeshAuthKeyOptions { Tags = [tag] }));
            Assert.Equal(HttpStatusCode.BadRequest, e.StatusCode);
            Assert.StartsWith($"tags: '{tag}'", e.Detail, StringComparison.Ordinal);
            Assert.Contains(e.Detail!, e.Message, StringComparison.Ordinal);
        }

        MeshAdminException tooLong = await Assert.ThrowsAsync<MeshAdminException>(() => admin.CreateAuthKeyAsync(new MeshAuthKeyOptions { ExpiresIn = TimeSpan.FromDays(3651) }));
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        Assert.StartsWith("expiresInSeconds:", tooLong.Detail, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => admin.CreateAuthKeyAsync(new MeshAuthKeyOptions { ExpiresIn = TimeSpan.Zero }));
        Assert.Empty(await admin.ListAuthKeysAsync());
    }

    [Fact]
    public async Task Every_method_refuses_a_wrong_or_missing_credential_with_401_and_never_shows_it()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        JoinResponse node = await host.JoinAsync(key.Key, "victim");
        const string wrong = "wrong-credential-0123456789";
        foreach (string credential in new[] { wrong, CoordinatorHost.AdminCredential + "x", node.NodeToken })
        {
            using MeshAdminClient admin = Client(host, credential);
            var calls = new (string Name, Func<Task> Call)[]
            {
                ("CreateAuthKeyAsync", () => admin.CreateAuthKeyAsync(new MeshAuthKeyOptions { Reusable = true })),
                ("ListAuthKeysAsync", () => admin.ListAuthKeysAsync()),
                ("RevokeAuthKeyAsync", () => admin.RevokeAuthKeyAsync(key.Info.Id)),
                ("ListNodesAsync", () => admin.ListNodesAsync()),
                ("GetNodeAsync", () => admin.GetNodeAsync(node.Self.Id)),
                ("FindNodeAsync", () => admin.FindNodeAsync("victim")),
                ("RenameNodeAsync", () => admin.RenameNodeAsync(node.Self.Id, "renamed")),
                ("DeleteNodeAsync", () => admin.DeleteNodeAsync(node.Self.Id)),
                ("ExpireNodeAsync", () => admin.ExpireNodeAsync(node.Self.Id)),
                ("WaitForNodeAsync", () => admin.WaitForNodeAsync("victim", online: false, TimeSpan.FromSeconds(30))),
            };
            foreach ((string name, Func<Task> call) in calls)
            {
                MeshAdminException e = await Assert.ThrowsAsync<MeshAdminException>(call);
                Assert.True(e.StatusCode == HttpStatusCode.Unauthorized, $"{name}: {e.StatusCode}");
                Assert.True(e.IsUnauthorized, name);
                Assert.Contains("admin credential missing or wrong", e.Message, StringComparison.Ordinal);
                Assert.DoesNotContain(credential, e.ToString(), StringComparison.Ordinal);
            }
        }

        // Nothing was changed by the refused calls.
        using MeshAdminClient right = Client(host);
        MeshNodeInfo still = await right.GetNodeAsync(node.Self.Id);
        Assert.Equal("victim", still.Name);
        Assert.False(still.Expired);
        Assert.Null(Assert.Single(await right.ListAuthKeysAsync()).Revoked);
    }

    [Fact]
    public async Task WaitForNodeAsync_returns_when_the_node_comes_online_and_times_out_with_what_it_saw()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        using MeshAdminClient admin = Client(host);
        CreatedAuthKey key = await admin.CreateAuthKeyAsync(new MeshAuthKeyOptions { Reusable = true });
        JoinResponse homelab = await host.JoinAsync(key.Key, "homelab");

        // Joined but without a map stream: offline.
        MeshNodeInfo offline = await admin.WaitForNodeAsync("homelab", online: false, TimeSpan.FromSeconds(30));
        Assert.False(offline.Online);
        TimeoutException notYet = await Assert.ThrowsAsync<TimeoutException>(() => admin.WaitForNodeAsync("homelab", online: true, TimeSpan.FromMilliseconds(300)));
        Assert.Equal("Node 'homelab' was not online within 0.3 s: it is offline.", notYet.Message);
        TimeoutException nobody = await Assert.ThrowsAsync<TimeoutException>(() => admin.WaitForNodeAsync("nobody", timeout: TimeSpan.FromMilliseconds(300)));
        Assert.Contains("no such node", nobody.Message, StringComparison.Ordinal);

        Task<MeshNodeInfo> waiting = admin.WaitForNodeAsync("homelab.tunnelmesh", online: true, TimeSpan.FromSeconds(30));
        await using (MapStream map = await host.OpenMapAsync(homelab.NodeToken))
        {
            MeshNodeInfo online = await waiting;
            Assert.True(online.Online);
            Assert.Equal(homelab.Self.Id, online.Id);
        }

        // The caller's token cancels (not a timeout).
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => admin.WaitForNodeAsync("nobody", timeout: TimeSpan.FromSeconds(30), cancellationToken: cancelled.Token));

        // An expired node is never "online" for the wait.
        await admin.ExpireNodeAsync(homelab.Self.Id);
        TimeoutException expired = await Assert.ThrowsAsync<TimeoutException>(() => admin.WaitForNodeAsync("homelab", online: true, TimeSpan.FromMilliseconds(300)));
        Assert.Contains("it is expired", expired.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_shared_HttpClient_is_used_without_being_changed_or_disposed()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        using var shared = new HttpClient(host.Server.CreateHandler()) { BaseAddress = new Uri("http://localhost/unrelated/") };
        var admin = new MeshAdminClient(shared, TestServerUrl, CoordinatorHost.AdminCredential);
        Assert.Equal(new Uri("http://localhost/api/v1/"), admin.ApiUrl);
        Assert.Empty(await admin.ListNodesAsync());
        Assert.Null(shared.DefaultRequestHeaders.Authorization);
        admin.Dispose();
        admin.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => admin.ListNodesAsync());

        // The shared client still works after the admin client is gone.
        HttpResponseMessage health = await shared.GetAsync(new Uri("http://localhost/api/v1/health"));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        // An owned client is disposed with the admin client; twice is harmless.
        var owned = Client(host);
        owned.Dispose();
        owned.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => owned.ListAuthKeysAsync());
    }

    [Fact]
    public void Bad_arguments_are_refused_without_repeating_the_credential()
    {
        Assert.Throws<ArgumentException>(() => new MeshAdminClient(new Uri("ftp://coordinator/"), CoordinatorHost.AdminCredential));
        Assert.Throws<ArgumentException>(() => new MeshAdminClient(new Uri("/relative", UriKind.Relative), CoordinatorHost.AdminCredential));
        Assert.Throws<ArgumentException>(() => new MeshAdminClient(TestServerUrl, "  "));
        ArgumentException newline = Assert.Throws<ArgumentException>(() => new MeshAdminClient(TestServerUrl, "secret-part\r\nX-Injected: 1"));
        Assert.DoesNotContain("secret-part", newline.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => new MeshAdminClient(null!, TestServerUrl, CoordinatorHost.AdminCredential));

        // A path below the host is kept: the API sits under it.
        using var below = new MeshAdminClient(new Uri("https://example.com/mesh/?q=1"), CoordinatorHost.AdminCredential);
        Assert.Equal(new Uri("https://example.com/mesh/api/v1/"), below.ApiUrl);
    }

    [Property]
    public Property Find_matches_names_and_fqdns_in_any_case_and_keys_exactly()
    {
        return Prop.ForAll(
            Gen.Elements("alpha", "beta", "homelab-42", "gamma-2", "x").ListOf().Select(l => l.Distinct().ToArray()).ToArbitrary(),
            names =>
            {
                var nodes = names.Select((n, i) => new MeshNodeInfo(
                    i + 1, n, n + ".tunnelmesh", Convert.ToBase64String(Enumerable.Repeat((byte)i, 32).ToArray()),
                    [], [], [], false, false, null, DateTimeOffset.UnixEpoch, false)).ToList();
                foreach (MeshNodeInfo node in nodes)
                {
                    Assert.Same(node, MeshAdminClient.Find(nodes, node.Name.ToUpperInvariant()));
                    Assert.Same(node, MeshAdminClient.Find(nodes, node.Fqdn + "."));
                    Assert.Same(node, MeshAdminClient.Find(nodes, node.PublicKey));
                    string lower = node.PublicKey.ToLowerInvariant();
                    if (lower != node.PublicKey)
                    {
                        Assert.Null(MeshAdminClient.Find(nodes, lower)); // keys are base64: case matters
                    }
                }

                Assert.Null(MeshAdminClient.Find(nodes, "delta"));
            });
    }

    [Fact]
    public async Task On_Kestrel_a_node_joins_with_a_key_from_the_client_is_waited_for_and_deleted_and_its_peer_drops_it()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        using var admin = new MeshAdminClient(mesh.Url, CoordinatorHost.AdminCredential);

        CreatedAuthKey paasKey = await admin.CreateAuthKeyAsync(new MeshAuthKeyOptions { Reusable = true, Tags = ["tag:paas"] });
        MeshNode paas = await mesh.StartNodeAsync("paas", paasKey.Key);
        CreatedAuthKey oneShot = await admin.CreateAuthKeyAsync(new MeshAuthKeyOptions { Ephemeral = true, Tags = ["tag:customer-7"] });
        MeshNodeOptions options = mesh.NodeOptions("homelab-7", oneShot.Key, mesh.StateDirectory("homelab-7"));
        options.Ephemeral = true;
        MeshNode homelab = await mesh.StartNodeAsync(options);

        MeshNodeInfo node = await admin.WaitForNodeAsync("homelab-7", online: true, KestrelMesh.Deadline);
        Assert.True(node.Ephemeral);
        Assert.Equal(["tag:customer-7"], node.Tags);
        Assert.Equal(homelab.PublicKey.ToString(), node.PublicKey);
        Assert.Equal(node.Id, (await admin.FindNodeAsync(homelab.PublicKey))?.Id);
        Assert.Equal(1, (await admin.ListAuthKeysAsync()).Single(k => k.Id == oneShot.Info.Id).Uses);
        await KestrelMesh.PeerAsync(paas, "homelab-7");

        await admin.DeleteNodeAsync(node.Id);
        await KestrelMesh.UntilAsync(() => paas.GetStatus().FindPeer("homelab-7") is null, () => "paas drops homelab-7, sees " + KestrelMesh.Names(paas));
        Assert.Null(await admin.FindNodeAsync("homelab-7"));
        Assert.Equal(["paas"], (await admin.ListNodesAsync()).Select(n => n.Name));
    }
}
