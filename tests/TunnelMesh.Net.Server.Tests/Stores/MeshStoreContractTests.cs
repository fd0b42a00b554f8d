using System.Net;
using System.Security.Cryptography;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Tests.Stores;

/// <summary>
/// The <see cref="IMeshStore"/> contract, run against every store: each derived class opens
/// instances over fresh storage of its own (a temp file, a schema) and removes it afterwards.
/// A second instance over the same storage stands for a second coordinator replica.
/// </summary>
public abstract class MeshStoreContractTests : IAsyncLifetime
{
    private static readonly IPNetwork Prefix4 = IPNetwork.Parse("100.64.0.0/10");
    private static readonly IPNetwork Prefix6 = IPNetwork.Parse("fd7a:115c:a1e0::/48");
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private readonly List<IMeshStore> opened = [];

    /// <summary>The first instance, opened before each fact.</summary>
    protected IMeshStore Store { get; private set; } = null!;

    /// <summary>A new, initialised store instance over this test's storage.</summary>
    protected abstract Task<IMeshStore> CreateStoreAsync();

    /// <summary>Removes this test's storage (all instances are disposed by then).</summary>
    protected abstract Task DeleteStorageAsync();

    public async Task InitializeAsync() => Store = await OpenAsync();

    public async Task DisposeAsync()
    {
        foreach (var s in opened)
        {
            await s.DisposeAsync();
        }

        await DeleteStorageAsync();
    }

    /// <summary>Another instance over the same storage (another replica), disposed after the test.</summary>
    protected async Task<IMeshStore> OpenAsync()
    {
        var s = await CreateStoreAsync();
        opened.Add(s);
        return s;
    }

    [StoreFact]
    public async Task Auth_keys_are_created_listed_and_revoked_once()
    {
        var a = await Store.CreateAuthKeyAsync(new NewAuthKey(Hash("a"), true, false, ["tag:web", "tag:prod"], "for web", T0, T0.AddDays(1)));
        var b = await Store.CreateAuthKeyAsync(new NewAuthKey(Hash("b"), false, true, [], null, T0, T0.AddHours(1)));
        Assert.NotEqual(a.Id, b.Id);

        var got = await Store.GetAuthKeyAsync(a.Id);
        Assert.NotNull(got);
        Assert.Equal(Hash("a"), got.SecretHash);
        Assert.True(got.Reusable);
        Assert.False(got.Ephemeral);
        Assert.Equal(["tag:web", "tag:prod"], got.Tags);
        Assert.Equal("for web", got.Description);
        Assert.Equal(T0, got.Created);
        Assert.Equal(T0.AddDays(1), got.Expires);
        Assert.Null(got.Revoked);
        Assert.Equal(0, got.Uses);

        var list = await Store.ListAuthKeysAsync();
        Assert.Equal([a.Id, b.Id], list.Select(k => k.Id));
        Assert.Null(list[1].Description);
        Assert.True(list[1].Ephemeral);
        Assert.False(list[1].Reusable);
        Assert.Null(await Store.GetAuthKeyAsync(b.Id + 1000));

        Assert.True(await Store.RevokeAuthKeyAsync(a.Id, T0.AddMinutes(5)));
        Assert.True(await Store.RevokeAuthKeyAsync(a.Id, T0.AddMinutes(9)));
        Assert.Equal(T0.AddMinutes(5), (await Store.GetAuthKeyAsync(a.Id))!.Revoked);
        Assert.Null((await Store.GetAuthKeyAsync(b.Id))!.Revoked);
        Assert.False(await Store.RevokeAuthKeyAsync(b.Id + 1000, T0));
    }

    [StoreFact]
    public async Task Join_allocates_the_lowest_addresses_from_the_first_usable_one()
    {
        var key = await NewKeyAsync();
        var first = await JoinAsync(key.Id, 1, "alpha", endpoints: ["192.0.2.1:51820", "[2001:db8::1]:51820"]);
        var second = await JoinAsync(key.Id, 2, "beta");
        var third = await JoinAsync(key.Id, 3, "gamma");

        Assert.Equal(JoinStatus.Joined, first.Status);
        var n1 = first.Node!;
        Assert.Equal(IPAddress.Parse("100.64.0.1"), n1.Address4);
        Assert.Equal(IPAddress.Parse("fd7a:115c:a1e0::6440:1"), n1.Address6);
        Assert.Equal(IPAddress.Parse("100.64.0.2"), second.Node!.Address4);
        Assert.Equal(IPAddress.Parse("100.64.0.3"), third.Node!.Address4);
        Assert.Equal(IPAddress.Parse("fd7a:115c:a1e0::6440:3"), third.Node.Address6);

        Assert.Equal("alpha", n1.Name);
        Assert.Equal(PublicKey(1), n1.PublicKey);
        Assert.Equal(["192.0.2.1:51820", "[2001:db8::1]:51820"], n1.Endpoints);
        Assert.Equal(["tag:test"], n1.Tags);
        Assert.Equal(key.Id, n1.AuthKeyId);
        Assert.Equal(Hash("token-1"), n1.TokenHash);
        Assert.Equal(T0, n1.Created);
        Assert.False(n1.Ephemeral);
        Assert.False(n1.Online);
        Assert.Null(n1.LastSeen);
        Assert.Null(n1.Expired);

        AssertSameNode(n1, (await Store.GetNodeAsync(n1.Id))!);
        AssertSameNode(n1, (await Store.GetNodeByKeyAsync(PublicKey(1)))!);
        Assert.Null(await Store.GetNodeByKeyAsync(PublicKey(99)));
        Assert.Null(await Store.GetNodeAsync(third.Node.Id + 1000));
        Assert.Equal([n1.Id, second.Node.Id, third.Node.Id], (await Store.ListNodesAsync()).Select(n => n.Id));
        Assert.Equal(3, (await Store.GetAuthKeyAsync(key.Id))!.Uses);
    }

    [StoreFact]
    public async Task The_same_public_key_joins_again_as_the_same_node()
    {
        var key = await NewKeyAsync();
        var first = (await JoinAsync(key.Id, 1, "laptop")).Node!;
        await JoinAsync(key.Id, 2, "other");

        var again = await Store.JoinAsync(Command(key.Id, 1, "laptop", endpoints: ["198.51.100.7:4000"], token: "token-new", now: T0.AddHours(1)));
        Assert.Equal(JoinStatus.Rejoined, again.Status);
        Assert.Equal(first.Id, again.Node!.Id);
        Assert.Equal(first.Address4, again.Node.Address4);
        Assert.Equal(first.Address6, again.Node.Address6);
        Assert.Equal("laptop", again.Node.Name);
        Assert.Equal(["198.51.100.7:4000"], again.Node.Endpoints);
        Assert.Equal(Hash("token-new"), again.Node.TokenHash);
        Assert.Equal(T0, again.Node.Created);

        // A re-join by token (no auth key) is the same node too.
        var byToken = await Store.JoinAsync(Command(null, 1, "laptop", token: "token-3"));
        Assert.Equal(JoinStatus.Rejoined, byToken.Status);
        Assert.Equal(first.Id, byToken.Node!.Id);
        Assert.Equal(first.Address4, byToken.Node.Address4);
        Assert.Equal(Hash("token-3"), byToken.Node.TokenHash);

        Assert.Equal(2, (await Store.ListNodesAsync()).Count);
        Assert.Equal(3, (await Store.GetAuthKeyAsync(key.Id))!.Uses);
    }

    [StoreFact]
    public async Task A_one_shot_key_admits_one_join()
    {
        var key = await NewKeyAsync(reusable: false);
        Assert.Equal(JoinStatus.Joined, (await JoinAsync(key.Id, 1, "one")).Status);
        var second = await JoinAsync(key.Id, 2, "two");
        Assert.Equal(JoinStatus.KeyUsed, second.Status);
        Assert.Null(second.Node);
        Assert.Single(await Store.ListNodesAsync());
        Assert.Equal(1, (await Store.GetAuthKeyAsync(key.Id))!.Uses);
    }

    [StoreFact]
    public async Task Refused_joins_say_why_and_change_nothing()
    {
        var revoked = await NewKeyAsync();
        await Store.RevokeAuthKeyAsync(revoked.Id, T0);
        var expired = await NewKeyAsync(expires: T0.AddMinutes(-1));
        var expiresNow = await NewKeyAsync(expires: T0);
        long version = await Store.GetVersionAsync();

        Assert.Equal(JoinStatus.KeyRevoked, (await JoinAsync(revoked.Id, 1, "a")).Status);
        Assert.Equal(JoinStatus.KeyExpired, (await JoinAsync(expired.Id, 1, "a")).Status);
        Assert.Equal(JoinStatus.KeyExpired, (await JoinAsync(expiresNow.Id, 1, "a")).Status);
        Assert.Equal(JoinStatus.KeyNotFound, (await JoinAsync(expiresNow.Id + 1000, 1, "a")).Status);
        var unknown = await Store.JoinAsync(Command(null, 1, "a"));
        Assert.Equal(JoinStatus.UnknownNode, unknown.Status);
        Assert.Null(unknown.Node);

        Assert.Empty(await Store.ListNodesAsync());
        Assert.Equal(version, await Store.GetVersionAsync());
        Assert.All(await Store.ListAuthKeysAsync(), k => Assert.Equal(0, k.Uses));
    }

    [StoreFact]
    public async Task Clashing_names_get_suffixes_and_a_node_keeps_its_own()
    {
        var key = await NewKeyAsync();
        Assert.Equal("web", (await JoinAsync(key.Id, 1, "web")).Node!.Name);
        Assert.Equal("web-2", (await JoinAsync(key.Id, 2, "web")).Node!.Name);
        Assert.Equal("web-3", (await JoinAsync(key.Id, 3, "web")).Node!.Name);

        // web-2 re-joins asking for "web" again: it keeps web-2; the first node keeps web.
        Assert.Equal("web-2", (await JoinAsync(key.Id, 2, "web")).Node!.Name);
        Assert.Equal("web", (await JoinAsync(key.Id, 1, "web")).Node!.Name);

        // A node that asks for another host name gets it.
        Assert.Equal("db", (await JoinAsync(key.Id, 3, "db")).Node!.Name);
        Assert.Equal("web-3", (await JoinAsync(key.Id, 4, "web")).Node!.Name);

        var names = (await Store.ListNodesAsync()).Select(n => n.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
    }

    [StoreFact]
    public async Task Rename_refuses_a_taken_name_and_the_new_name_sticks()
    {
        var key = await NewKeyAsync();
        var a = (await JoinAsync(key.Id, 1, "a")).Node!;
        var b = (await JoinAsync(key.Id, 2, "b")).Node!;

        Assert.Equal(RenameStatus.NameTaken, await Store.RenameNodeAsync(a.Id, "b"));
        Assert.Equal("a", (await Store.GetNodeAsync(a.Id))!.Name);
        Assert.Equal(RenameStatus.NotFound, await Store.RenameNodeAsync(b.Id + 1000, "zzz"));
        Assert.Equal(RenameStatus.Renamed, await Store.RenameNodeAsync(a.Id, "a"));

        Assert.Equal(RenameStatus.Renamed, await Store.RenameNodeAsync(a.Id, "printer"));
        Assert.Equal("printer", (await Store.GetNodeAsync(a.Id))!.Name);
        Assert.Throws<ArgumentException>(() => { _ = Store.RenameNodeAsync(a.Id, "Not A Label"); });

        // Re-joining with the same host name as before keeps the administrator's name; "a" is free again.
        Assert.Equal("printer", (await JoinAsync(key.Id, 1, "a")).Node!.Name);
        Assert.Equal("a", (await JoinAsync(key.Id, 3, "a")).Node!.Name);
    }

    [StoreFact]
    public async Task Deleting_a_node_frees_its_address_for_the_next_join()
    {
        var key = await NewKeyAsync();
        await JoinAsync(key.Id, 1, "a");
        var b = (await JoinAsync(key.Id, 2, "b")).Node!;
        await JoinAsync(key.Id, 3, "c");

        Assert.True(await Store.DeleteNodeAsync(b.Id));
        Assert.False(await Store.DeleteNodeAsync(b.Id));
        Assert.Null(await Store.GetNodeAsync(b.Id));

        var d = (await JoinAsync(key.Id, 4, "b")).Node!;
        Assert.Equal(IPAddress.Parse("100.64.0.2"), d.Address4);
        Assert.Equal("b", d.Name);
        Assert.NotEqual(b.Id, d.Id); // ids are never reused
        Assert.Equal(IPAddress.Parse("100.64.0.4"), (await JoinAsync(key.Id, 5, "e")).Node!.Address4);
    }

    [StoreFact]
    public async Task An_expired_node_is_kept_and_a_join_with_an_auth_key_revives_it()
    {
        var key = await NewKeyAsync();
        var a = (await JoinAsync(key.Id, 1, "a")).Node!;

        Assert.True(await Store.ExpireNodeAsync(a.Id, T0.AddHours(1)));
        Assert.True(await Store.ExpireNodeAsync(a.Id, T0.AddHours(2)));
        Assert.False(await Store.ExpireNodeAsync(a.Id + 1000, T0));
        var expired = Assert.Single(await Store.ListNodesAsync());
        Assert.Equal(T0.AddHours(1), expired.Expired);

        // By token alone it stays expired (the caller refuses it); with an auth key it is revived.
        Assert.Equal(T0.AddHours(1), (await Store.JoinAsync(Command(null, 1, "a"))).Node!.Expired);
        var revived = await JoinAsync(key.Id, 1, "a");
        Assert.Equal(JoinStatus.Rejoined, revived.Status);
        Assert.Null(revived.Node!.Expired);
        Assert.Equal(a.Id, revived.Node.Id);
        Assert.Equal(a.Address4, revived.Node.Address4);
    }

    [StoreFact]
    public async Task Endpoints_and_online_state_are_stored()
    {
        var key = await NewKeyAsync();
        var a = (await JoinAsync(key.Id, 1, "a")).Node!;

        Assert.True(await Store.UpdateEndpointsAsync(a.Id, ["203.0.113.5:41641"]));
        Assert.False(await Store.UpdateEndpointsAsync(a.Id + 1000, ["203.0.113.5:41641"]));
        Assert.True(await Store.SetOnlineAsync(a.Id, true, T0.AddMinutes(1)));
        Assert.False(await Store.SetOnlineAsync(a.Id + 1000, true, T0));

        var got = (await Store.GetNodeAsync(a.Id))!;
        Assert.Equal(["203.0.113.5:41641"], got.Endpoints);
        Assert.True(got.Online);
        Assert.Equal(T0.AddMinutes(1), got.LastSeen);

        Assert.True(await Store.SetOnlineAsync(a.Id, false, T0.AddMinutes(2)));
        got = (await Store.GetNodeAsync(a.Id))!;
        Assert.False(got.Online);
        Assert.Equal(T0.AddMinutes(2), got.LastSeen);
    }

    [StoreFact]
    public async Task Ephemeral_nodes_offline_too_long_are_deleted()
    {
        var ephemeralKey = await NewKeyAsync(ephemeral: true);
        var key = await NewKeyAsync();
        var byKey = (await JoinAsync(ephemeralKey.Id, 1, "e1")).Node!;
        var asked = (await Store.JoinAsync(Command(key.Id, 2, "e2", ephemeral: true))).Node!;
        var never = (await JoinAsync(ephemeralKey.Id, 3, "e3")).Node!; // joined at T0, never connected
        var regular = (await JoinAsync(key.Id, 4, "n4")).Node!;
        Assert.True(byKey.Ephemeral);
        Assert.True(asked.Ephemeral);
        Assert.False(regular.Ephemeral);

        await Store.SetOnlineAsync(byKey.Id, true, T0);
        await Store.SetOnlineAsync(byKey.Id, false, T0.AddMinutes(1));
        await Store.SetOnlineAsync(asked.Id, true, T0);
        await Store.SetOnlineAsync(regular.Id, false, T0.AddMinutes(1));

        Assert.Equal(0, await Store.DeleteEphemeralOfflineAsync(T0));
        long version = await Store.GetVersionAsync();
        Assert.Equal(2, await Store.DeleteEphemeralOfflineAsync(T0.AddMinutes(5)));
        Assert.True(await Store.GetVersionAsync() > version);
        Assert.Equal([asked.Id, regular.Id], (await Store.ListNodesAsync()).Select(n => n.Id));
        Assert.Null(await Store.GetNodeAsync(never.Id));

        await Store.SetOnlineAsync(asked.Id, false, T0.AddMinutes(10));
        Assert.Equal(0, await Store.DeleteEphemeralOfflineAsync(T0.AddMinutes(5)));
        Assert.Equal(1, await Store.DeleteEphemeralOfflineAsync(T0.AddMinutes(11)));
        Assert.Equal([regular.Id], (await Store.ListNodesAsync()).Select(n => n.Id));
    }

    [StoreFact]
    public async Task The_version_increments_on_every_change_and_only_then()
    {
        Assert.Equal(0, await Store.GetVersionAsync());
        var key = await NewKeyAsync();
        Assert.Equal(0, await Store.GetVersionAsync()); // auth keys are not part of the map

        long last = 0;
        async Task Changed(Func<Task> change)
        {
            await change();
            long now = await Store.GetVersionAsync();
            Assert.True(now > last, $"version {now} after {last}");
            last = now;
        }

        async Task Unchanged(Func<Task> noChange)
        {
            await noChange();
            Assert.Equal(last, await Store.GetVersionAsync());
        }

        NodeRecord a = null!;
        await Changed(async () => a = (await JoinAsync(key.Id, 1, "a")).Node!);
        Assert.Equal(last, a.Version);
        await Changed(() => JoinAsync(key.Id, 2, "b"));
        await Changed(() => JoinAsync(key.Id, 1, "a"));
        await Changed(() => Store.UpdateEndpointsAsync(a.Id, ["192.0.2.9:1"]));
        await Unchanged(() => Store.UpdateEndpointsAsync(a.Id, ["192.0.2.9:1"]));
        await Changed(() => Store.SetOnlineAsync(a.Id, true, T0));
        await Changed(() => Store.RenameNodeAsync(a.Id, "renamed"));
        Assert.Equal(last, (await Store.GetNodeAsync(a.Id))!.Version); // a node carries the version of its last change
        await Unchanged(() => Store.RenameNodeAsync(a.Id, "b"));
        await Changed(() => Store.ExpireNodeAsync(a.Id, T0));
        await Unchanged(() => Store.ExpireNodeAsync(a.Id, T0.AddMinutes(1)));
        await Changed(() => Store.DeleteNodeAsync(a.Id));
        await Unchanged(() => Store.DeleteNodeAsync(a.Id));
        await Unchanged(() => JoinAsync(key.Id + 1000, 3, "c"));
        await Unchanged(() => Store.RevokeAuthKeyAsync(key.Id, T0));
    }

    [StoreFact]
    public async Task WaitForChange_wakes_for_changes_through_this_and_another_instance()
    {
        var replica = await OpenAsync();
        var key = await NewKeyAsync();
        long v0 = await Store.GetVersionAsync();

        // Already newer: completes at once.
        await JoinAsync(key.Id, 1, "a");
        Assert.Equal(v0 + 1, await Store.WaitForChangeAsync(v0).WaitAsync(Deadline));

        // A change through this instance.
        var own = Store.WaitForChangeAsync(v0 + 1);
        Assert.False(own.IsCompleted);
        await JoinAsync(key.Id, 2, "b");
        Assert.Equal(v0 + 2, await own.WaitAsync(Deadline));

        // A change through a second instance over the same storage (another replica), seen by both.
        var onFirst = Store.WaitForChangeAsync(v0 + 2);
        var onReplica = replica.WaitForChangeAsync(v0 + 2);
        Assert.False(onFirst.IsCompleted);
        Assert.Equal(JoinStatus.Joined, (await replica.JoinAsync(Command(key.Id, 3, "c"))).Status);
        Assert.Equal(v0 + 3, await onFirst.WaitAsync(Deadline));
        Assert.Equal(v0 + 3, await onReplica.WaitAsync(Deadline));

        // And the other way round.
        var onReplica2 = replica.WaitForChangeAsync(v0 + 3);
        await Store.DeleteNodeAsync((await Store.GetNodeByKeyAsync(PublicKey(3)))!.Id);
        Assert.Equal(v0 + 4, await onReplica2.WaitAsync(Deadline));

        // Cancellation ends a wait.
        using var cts = new CancellationTokenSource();
        var cancelled = Store.WaitForChangeAsync(v0 + 4, cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Deadline));
    }

    [StoreFact]
    public async Task Concurrent_joins_through_two_instances_never_share_an_address_or_a_name()
    {
        const int Count = 200;
        var replica = await OpenAsync();
        var key = await NewKeyAsync();
        var stores = new[] { Store, replica };

        var joins = Enumerable.Range(1, Count)
            .Select(i => Task.Run(() => stores[i % 2].JoinAsync(Command(key.Id, i, "box"))))
            .ToArray();
        var results = await Task.WhenAll(joins).WaitAsync(TimeSpan.FromMinutes(5));

        Assert.All(results, r => Assert.Equal(JoinStatus.Joined, r.Status));
        var nodes = results.Select(r => r.Node!).ToList();
        Assert.Equal(Count, nodes.Select(n => n.Address4).Distinct().Count());
        Assert.Equal(Count, nodes.Select(n => n.Address6).Distinct().Count());
        Assert.Equal(Count, nodes.Select(n => n.Id).Distinct().Count());
        // Exactly the lowest Count addresses and names box, box-2 … box-Count, in some order.
        Assert.Equal(
            Enumerable.Range(0, Count).Select(i => NameRules.Address4At(Prefix4, i).ToString()).Order(),
            nodes.Select(n => n.Address4.ToString()).Order());
        Assert.Equal(
            Enumerable.Range(1, Count).Select(i => i == 1 ? "box" : NameRules.WithSuffix("box", i)).Order(StringComparer.Ordinal),
            nodes.Select(n => n.Name).Order(StringComparer.Ordinal));

        Assert.Equal(Count, (await Store.ListNodesAsync()).Count);
        Assert.Equal(Count, (await replica.GetAuthKeyAsync(key.Id))!.Uses);
        Assert.Equal(Count, await Store.GetVersionAsync());
    }

    [StoreFact]
    public async Task Nothing_is_lost_when_the_store_is_reopened()
    {
        var key = await NewKeyAsync();
        var oneShot = await NewKeyAsync(reusable: false);
        await Store.RevokeAuthKeyAsync(oneShot.Id, T0.AddMinutes(3));
        var a = (await JoinAsync(key.Id, 1, "a", endpoints: ["192.0.2.1:1"])).Node!;
        var b = (await JoinAsync(key.Id, 2, "a")).Node!;
        await Store.SetOnlineAsync(a.Id, true, T0.AddMinutes(1));
        await Store.ExpireNodeAsync(b.Id, T0.AddMinutes(2));
        var nodesBefore = await Store.ListNodesAsync();
        var keysBefore = await Store.ListAuthKeysAsync();
        long versionBefore = await Store.GetVersionAsync();

        await Store.DisposeAsync();
        await Store.DisposeAsync(); // twice is fine
        var reopened = await OpenAsync();

        Assert.Equal(versionBefore, await reopened.GetVersionAsync());
        var nodesAfter = await reopened.ListNodesAsync();
        Assert.Equal(nodesBefore.Count, nodesAfter.Count);
        foreach (var (before, after) in nodesBefore.Zip(nodesAfter))
        {
            AssertSameNode(before, after);
        }

        var keysAfter = await reopened.ListAuthKeysAsync();
        Assert.Equal(keysBefore.Select(k => (k.Id, k.Uses, k.Revoked, k.Expires, k.Reusable)), keysAfter.Select(k => (k.Id, k.Uses, k.Revoked, k.Expires, k.Reusable)));
        Assert.Equal(keysBefore.Select(k => Convert.ToHexString(k.SecretHash)), keysAfter.Select(k => Convert.ToHexString(k.SecretHash)));

        // It carries on where it stopped: the same key re-joins as the same node, a new one gets the next address.
        Assert.Equal(a.Id, (await reopened.JoinAsync(Command(key.Id, 1, "a"))).Node!.Id);
        Assert.Equal(IPAddress.Parse("100.64.0.3"), (await reopened.JoinAsync(Command(key.Id, 3, "c"))).Node!.Address4);
        Assert.Equal(JoinStatus.KeyRevoked, (await reopened.JoinAsync(Command(oneShot.Id, 4, "d"))).Status);
    }

    [StoreFact]
    public async Task A_full_prefix_refuses_joins_until_an_address_is_free()
    {
        var tiny = IPNetwork.Parse("10.9.0.0/30"); // two usable addresses: .1 and .2
        var key = await NewKeyAsync();
        var a = await Store.JoinAsync(Command(key.Id, 1, "a", prefix4: tiny));
        var b = await Store.JoinAsync(Command(key.Id, 2, "b", prefix4: tiny));
        Assert.Equal(IPAddress.Parse("10.9.0.1"), a.Node!.Address4);
        Assert.Equal(IPAddress.Parse("10.9.0.2"), b.Node!.Address4);
        long version = await Store.GetVersionAsync();

        var c = await Store.JoinAsync(Command(key.Id, 3, "c", prefix4: tiny));
        Assert.Equal(JoinStatus.AddressesExhausted, c.Status);
        Assert.Null(c.Node);
        Assert.Equal(version, await Store.GetVersionAsync());
        Assert.Equal(2, (await Store.GetAuthKeyAsync(key.Id))!.Uses);

        // A known node still re-joins, and a deletion makes room.
        Assert.Equal(JoinStatus.Rejoined, (await Store.JoinAsync(Command(key.Id, 1, "a", prefix4: tiny))).Status);
        await Store.DeleteNodeAsync(a.Node.Id);
        Assert.Equal(IPAddress.Parse("10.9.0.1"), (await Store.JoinAsync(Command(key.Id, 3, "c", prefix4: tiny))).Node!.Address4);
    }

    [StoreFact]
    public async Task Initialize_is_idempotent()
    {
        var key = await NewKeyAsync();
        await JoinAsync(key.Id, 1, "a");
        await Store.InitializeAsync();
        var other = await OpenAsync();
        await other.InitializeAsync();
        Assert.Single(await other.ListNodesAsync());
        Assert.Equal(1, await other.GetVersionAsync());
    }

    private static byte[] Hash(string s) => SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(s));

    /// <summary>A stable, distinct base64 public key per number.</summary>
    private static string PublicKey(int n) => Convert.ToBase64String(SHA256.HashData(BitConverter.GetBytes(n)));

    private Task<AuthKeyRecord> NewKeyAsync(bool reusable = true, bool ephemeral = false, DateTimeOffset? expires = null) =>
        Store.CreateAuthKeyAsync(new NewAuthKey(Hash(Guid.NewGuid().ToString()), reusable, ephemeral, ["tag:test"], null, T0.AddDays(-1), expires ?? T0.AddDays(1)));

    private Task<JoinResult> JoinAsync(long? keyId, int node, string hostname, IReadOnlyList<string>? endpoints = null) =>
        Store.JoinAsync(Command(keyId, node, hostname, endpoints));

    private static JoinCommand Command(
        long? keyId, int node, string hostname, IReadOnlyList<string>? endpoints = null, string? token = null, DateTimeOffset? now = null, IPNetwork? prefix4 = null, bool ephemeral = false) =>
        new(keyId, PublicKey(node), NameRules.Normalize(hostname), endpoints ?? [], Hash(token ?? $"token-{node}"), now ?? T0, prefix4 ?? Prefix4, Prefix6, ephemeral);

    private static void AssertSameNode(NodeRecord expected, NodeRecord actual)
    {
        Assert.Equal(expected with { Endpoints = [], Tags = [], TokenHash = [] }, actual with { Endpoints = [], Tags = [], TokenHash = [] }, NodeComparer.Instance);
        Assert.Equal(expected.Endpoints, actual.Endpoints);
        Assert.Equal(expected.Tags, actual.Tags);
        Assert.Equal(expected.TokenHash, actual.TokenHash);
    }

    /// <summary>Field by field, with the list and array fields left to the caller.</summary>
    private sealed class NodeComparer : IEqualityComparer<NodeRecord>
    {
        public static readonly NodeComparer Instance = new();

        public bool Equals(NodeRecord? x, NodeRecord? y) =>
            x is not null && y is not null &&
            (x.Id, x.Name, x.PublicKey, x.Address4, x.Address6, x.Ephemeral, x.AuthKeyId, x.Created, x.LastSeen, x.Online, x.Expired, x.Version).Equals(
            (y.Id, y.Name, y.PublicKey, y.Address4, y.Address6, y.Ephemeral, y.AuthKeyId, y.Created, y.LastSeen, y.Online, y.Expired, y.Version));

        public int GetHashCode(NodeRecord obj) => obj.Id.GetHashCode();
    }
}
