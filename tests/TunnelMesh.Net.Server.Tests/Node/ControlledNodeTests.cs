using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Node;

/// <summary>MeshNodes in control mode against <see cref="FakeControlServer"/>: join, names, live map changes, restarts, status.</summary>
public sealed class ControlledNodeTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private static readonly System.Text.Json.JsonSerializerOptions Json = new(System.Text.Json.JsonSerializerDefaults.Web);

    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("tm-node-");
    private readonly LogCollector _logs = new();
    private readonly List<IAsyncDisposable> _owned = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }

        _root.Delete(recursive: true);
    }

    [Fact]
    public async Task Two_nodes_join_get_addresses_see_each_other_and_talk_tcp_by_name()
    {
        var server = await StartServerAsync();
        var a = await StartNodeAsync(server, "a");
        var b = await StartNodeAsync(server, "b");

        Assert.Equal(IPAddress.Parse("100.64.0.1"), a.Address);
        Assert.Equal(IPAddress.Parse("100.64.0.2"), b.Address);
        Assert.Equal("b.tunnelmesh", (await WaitForPeerAsync(a, "b")).Fqdn);
        var seenFromB = await WaitForPeerAsync(b, "a");
        Assert.Equal([IPAddress.Parse("100.64.0.1"), IPAddress.Parse("fd7a:115c:a1e0::1")], seenFromB.Addresses);
        Assert.Equal(a.PublicKey, seenFromB.PublicKey);

        // The map's addresses are on the device as /32 and /128.
        var peerOfA = a.GetStatistics().Peers.Single();
        Assert.Equal(b.PublicKey, peerOfA.PublicKey);
        Assert.Equal([new IPNetwork(IPAddress.Parse("100.64.0.2"), 32), new IPNetwork(IPAddress.Parse("fd7a:115c:a1e0::2"), 128)], peerOfA.AllowedIPs.OrderBy(n => n.BaseAddress.AddressFamily));

        await using var listener = await b.ListenAsync(7001);
        await AssertEchoAsync(a, listener, "b", 7001);
        await AssertEchoAsync(a, listener, "b.tunnelmesh", 7001);
        await AssertEchoAsync(a, listener, "B.TunnelMesh.", 7001);

        var status = a.GetStatus();
        Assert.Equal("a", status.Self.Name);
        Assert.Equal("a.tunnelmesh", status.Self.Fqdn);
        Assert.Equal(MeshPeerPath.Direct, status.FindPeer("b")!.Path);
        Assert.NotNull(status.FindPeer("b.tunnelmesh")!.LastHandshake);
        Assert.True(status.FindPeer("b")!.Online);
    }

    [Fact]
    public async Task A_node_that_keeps_no_identity_joins_as_ephemeral_so_restarts_do_not_pile_up_dead_nodes()
    {
        var server = await StartServerAsync();

        // Defaults: no state directory, no key. The next start is a new node with a new key, so this
        // entry could never be used again: it asks to be removed once offline.
        var throwaway = await StartNodeAsync(server, "throwaway");
        Assert.True(server.EphemeralOf(throwaway.PublicKey));

        // A state directory keeps the identity: a normal node.
        string dir = Path.Combine(Path.GetTempPath(), "tm-eph-" + Guid.NewGuid().ToString("N"));
        MeshNode? kept = null;
        try
        {
            kept = await StartNodeAsync(server, "kept", dir);
            Assert.False(server.EphemeralOf(kept.PublicKey));
        }
        finally
        {
            if (kept is not null)
            {
                await kept.DisposeAsync();
            }

            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_map_holding_a_peer_with_a_small_order_key_still_applies_the_rest()
    {
        var server = await StartServerAsync();
        var a = await StartNodeAsync(server, "a");
        await WaitUntilAsync(() => a.GetStatus().ControlConnected, "a's map stream connects");

        // A coordinator that let an all-zero key in (before the join check): every node threw on it
        // while applying the map, and stopped taking updates.
        string zero = Convert.ToBase64String(new byte[32]);
        var evil = new Control.MeshNodeInfo(99, "evil", "evil.tunnelmesh", zero, ["100.64.0.99"], [], [], false, true, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, false);
        await server.UpsertRawAsync(evil);
        await server.UpsertRawAsync(evil); // again: skipped again, logged once

        var b = await StartNodeAsync(server, "b");
        await WaitForPeerAsync(a, "b");
        await using (var listener = await b.ListenAsync(7003))
        {
            await AssertEchoAsync(a, listener, "b", 7003);
        }

        Assert.Null(a.GetStatus().FindPeer("evil"));
        Assert.Equal(2, a.Control!.UnusablePeersSkipped);
        Assert.Single(_logs.Lines, l => l.Contains(zero, StringComparison.Ordinal) && l.Contains("small-order", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unknown_mesh_name_fails_with_host_not_found_naming_it()
    {
        var server = await StartServerAsync();
        var a = await StartNodeAsync(server, "a");

        var ex = await Assert.ThrowsAsync<SocketException>(() => a.DialAsync("nosuchhost.tunnelmesh", 80));
        Assert.Equal(SocketError.HostNotFound, ex.SocketErrorCode);
        Assert.Contains("nosuchhost.tunnelmesh", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_peer_added_by_a_delta_becomes_reachable_and_a_removed_one_is_gone_from_device_and_status()
    {
        var server = await StartServerAsync();
        var a = await StartNodeAsync(server, "a");
        await WaitUntilAsync(() => a.GetStatus().ControlConnected, "a's map stream connects");
        Assert.Empty(a.GetStatus().Peers);

        var changed = new List<MeshNodeStatus>();
        a.StatusChanged += (_, e) =>
        {
            lock (changed)
            {
                changed.Add(e.Status);
            }
        };

        // B joins after A's snapshot: A learns of it from a delta only.
        var b = await StartNodeAsync(server, "b");
        await WaitForPeerAsync(a, "b");
        await WaitUntilAsync(() => { lock (changed) { return changed.Any(s => s.FindPeer("b") is not null); } }, "StatusChanged shows b");
        await using (var listener = await b.ListenAsync(7002))
        {
            await AssertEchoAsync(a, listener, "b", 7002);
        }

        await server.RemoveNodeAsync(b.PublicKey);
        await WaitUntilAsync(() => a.GetStatus().FindPeer(b.PublicKey) is null, "b leaves a's status");
        Assert.DoesNotContain(a.GetStatistics().Peers, p => p.PublicKey == b.PublicKey);
        var ex = await Assert.ThrowsAsync<SocketException>(() => a.DialAsync("b", 7002));
        Assert.Equal(SocketError.HostNotFound, ex.SocketErrorCode);
        await Assert.ThrowsAsync<SocketException>(() => a.DialAsync(b.Address, 7002));
    }

    [Fact]
    public async Task A_changed_peer_keeps_its_session_and_gets_its_new_endpoint()
    {
        var server = await StartServerAsync();
        var a = await StartNodeAsync(server, "a");
        var b = await StartNodeAsync(server, "b");
        await WaitForPeerAsync(a, "b");
        await using var listener = await b.ListenAsync(7003);
        await AssertEchoAsync(a, listener, "b", 7003);
        long handshakes = a.GetStatistics().Peers.Single().Handshakes;

        // The coordinator republishes b with an extra (unusable) endpoint after the usable one: a changed peer, same route.
        var info = new Control.MeshNodeInfo(2, "b", "b.tunnelmesh", b.PublicKey.ToString(), ["100.64.0.2", "fd7a:115c:a1e0::2"],
            [$"127.0.0.1:{b.ListenPort}", "192.0.2.1:9"], [], false, false, null, DateTimeOffset.UtcNow, false);
        await server.PushAsync(new Control.PeerMapMessage(Control.PeerMapMessageType.Delta, 10_000, Upserted: [info]));
        await WaitUntilAsync(() => a.GetStatus().FindPeer("b") is { Online: false }, "b shows offline");

        Assert.Equal(handshakes, a.GetStatistics().Peers.Single().Handshakes);
        await AssertEchoAsync(a, listener, "b", 7003);
    }

    [Fact]
    public async Task A_node_restarts_from_its_state_directory_with_the_coordinator_down()
    {
        var server = await StartServerAsync();
        string stateA = Path.Combine(_root.FullName, "a-state");
        var a = await StartNodeAsync(server, "a", stateA);
        var b = await StartNodeAsync(server, "b");
        await WaitForPeerAsync(a, "b");
        await WaitUntilAsync(() => SavedPeerKeys(stateA).Contains(b.PublicKey.ToString()), "a saves b in its map");
        var keyBefore = a.PublicKey;
        var addressBefore = a.Address;
        int joins = server.Joins;

        await a.DisposeAsync();
        await server.DisposeAsync();

        // No auth key this time: the saved token is the credential, and the coordinator is down anyway.
        var restarted = await StartNodeAsync(server, "a", stateA, authKey: null);
        Assert.Equal(keyBefore, restarted.PublicKey);
        Assert.Equal(addressBefore, restarted.Address);
        Assert.Equal(joins, server.Joins);
        Assert.False(restarted.GetStatus().ControlConnected);
        Assert.Equal("b", restarted.GetStatus().FindPeer(b.PublicKey)!.Name);

        await using var listener = await b.ListenAsync(7004);
        await AssertEchoAsync(restarted, listener, "b.tunnelmesh", 7004);
    }

    [Fact]
    public async Task A_dropped_map_stream_reconnects_and_gets_a_fresh_snapshot()
    {
        var server = await StartServerAsync();
        var a = await StartNodeAsync(server, "a");
        await WaitUntilAsync(() => a.GetStatus().ControlConnected && server.StreamCount == 1, "a's map stream connects");
        var disconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        a.StatusChanged += (_, e) =>
        {
            if (!e.Status.ControlConnected)
            {
                disconnected.TrySetResult();
            }
        };

        server.DropStreams();
        await disconnected.Task.WaitAsync(Deadline);
        await WaitUntilAsync(() => a.GetStatus().ControlConnected, "a reconnects");

        // A change after the reconnect still arrives.
        var b = await StartNodeAsync(server, "b");
        await WaitForPeerAsync(a, "b");
        await using var listener = await b.ListenAsync(7005);
        await AssertEchoAsync(a, listener, "b", 7005);
    }

    [Fact]
    public async Task A_node_started_while_the_coordinator_is_down_joins_when_it_comes_back()
    {
        var server = await StartServerAsync();
        string state = Path.Combine(_root.FullName, "a-state");
        var a = await StartNodeAsync(server, "a", state);
        int port = server.Url.Port;
        await a.DisposeAsync();
        await server.DisposeAsync();

        var restarted = await StartNodeAsync(server, "a", state, authKey: null);
        Assert.False(restarted.GetStatus().ControlConnected);
        var coordinator = await FakeControlServer.StartAsync(port, restoreFrom: server);
        _owned.Add(coordinator);
        await WaitUntilAsync(() => restarted.GetStatus().ControlConnected, "the node reconnects to the coordinator");
        Assert.Equal(1, coordinator.Joins); // the background re-join with the saved token

        var b = await StartNodeAsync(coordinator, "b");
        await WaitForPeerAsync(restarted, "b");
        await using var listener = await b.ListenAsync(7006);
        await AssertEchoAsync(restarted, listener, "b", 7006);
    }

    [Fact]
    public async Task A_restarted_node_rejoins_with_its_token_and_keeps_key_and_address()
    {
        var server = await StartServerAsync();
        string state = Path.Combine(_root.FullName, "state");
        var a = await StartNodeAsync(server, "a", state);
        var key = a.PublicKey;
        await a.DisposeAsync();

        var again = await StartNodeAsync(server, "a", state, authKey: null);
        Assert.Equal(key, again.PublicKey);
        Assert.Equal(IPAddress.Parse("100.64.0.1"), again.Address);
        Assert.Equal(2, server.Joins);
    }

    [Fact]
    public async Task State_files_are_private_and_no_secret_reaches_a_log()
    {
        var server = await StartServerAsync();
        string state = Path.Combine(_root.FullName, "private", "state");
        var a = await StartNodeAsync(server, "a", state);
        var b = await StartNodeAsync(server, "b");
        await WaitForPeerAsync(a, "b");
        await WaitUntilAsync(() => File.Exists(Path.Combine(state, "peers.json")), "the map is saved");
        await WaitUntilAsync(() => server.EndpointsOf(a.PublicKey).Contains($"127.0.0.1:{a.ListenPort}"), "a reports its endpoint");

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(state));
        string[] files = Directory.GetFiles(state).Where(f => !f.EndsWith(".tmp", StringComparison.Ordinal)).ToArray(); // not one being written now
        Assert.Equal(["node.key", "node.token", "peers.json", "self.json"], files.Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (string file in files)
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }

        string[] secrets = [FakeControlServer.ValidAuthKey, .. server.Tokens];
        Assert.NotEmpty(_logs.Lines);
        foreach (string line in _logs.Lines)
        {
            foreach (string secret in secrets)
            {
                Assert.DoesNotContain(secret, line, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task A_refused_join_surfaces_the_coordinators_reason()
    {
        var server = await StartServerAsync();
        server.RefuseJoinsWith = "the auth key expired at 2024-01-01T00:00:00Z";
        var node = new MeshNode(ControlOptions(server, "a", null, FakeControlServer.ValidAuthKey));
        _owned.Add(node);

        var ex = await Assert.ThrowsAsync<MeshControlException>(() => node.StartAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, ex.StatusCode);
        Assert.Equal("the auth key expired at 2024-01-01T00:00:00Z", ex.Reason);
        Assert.Contains("expired", ex.Message, StringComparison.Ordinal);
        Assert.False(node.IsRunning);
    }

    [Fact]
    public async Task A_wrong_auth_key_is_refused_with_the_reason()
    {
        var server = await StartServerAsync();
        var node = new MeshNode(ControlOptions(server, "a", null, "tmkey-9-wrong"));
        _owned.Add(node);

        var ex = await Assert.ThrowsAsync<MeshControlException>(() => node.StartAsync());
        Assert.True(ex.IsUnauthorized);
        Assert.Equal("the auth key is not valid", ex.Reason);
    }

    [Fact]
    public async Task An_unreachable_coordinator_without_saved_state_fails_clearly()
    {
        var server = await StartServerAsync();
        var url = server.Url;
        await server.DisposeAsync();
        var node = new MeshNode(new MeshNodeOptions { ControlUrl = url, AuthKey = FakeControlServer.ValidAuthKey, Hostname = "a", ListenAddress = IPAddress.Loopback });
        _owned.Add(node);

        var ex = await Assert.ThrowsAsync<MeshControlException>(() => node.StartAsync());
        Assert.Null(ex.StatusCode);
        Assert.Contains("could not be reached", ex.Reason, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> BadOptions => new()
    {
        { "ftp-url", "MeshNodeOptions.ControlUrl" },
        { "relative-url", "MeshNodeOptions.ControlUrl" },
        { "no-auth-key", "MeshNodeOptions.AuthKey" },
        { "static-address", "MeshNodeOptions.Addresses" },
        { "auth-key-without-url", "MeshNodeOptions.ControlUrl" },
        { "blank-hostname", "MeshNodeOptions.Hostname" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public async Task Bad_control_options_fail_at_start_naming_the_option(string kind, string option)
    {
        var options = new MeshNodeOptions { ControlUrl = new Uri("http://127.0.0.1:9/"), AuthKey = "tmkey-1-x", Hostname = "a", ListenAddress = IPAddress.Loopback };
        switch (kind)
        {
            case "ftp-url": options.ControlUrl = new Uri("ftp://127.0.0.1/"); break;
            case "relative-url": options.ControlUrl = new Uri("/coordinator", UriKind.Relative); break;
            case "no-auth-key": options.AuthKey = null; options.StateDirectory = Path.Combine(_root.FullName, "empty"); break;
            case "static-address": options.Addresses.Add(IPAddress.Parse("100.64.0.9")); break;
            case "auth-key-without-url": options.ControlUrl = null; options.PrivateKey = NodePrivateKey.Generate(); options.Addresses.Add(IPAddress.Parse("10.0.0.1")); break;
            case "blank-hostname": options.Hostname = "  "; break;
        }

        await using var node = new MeshNode(options);
        var ex = await Assert.ThrowsAsync<MeshConfigurationException>(() => node.StartAsync());
        Assert.Equal(option, ex.Option);
        Assert.StartsWith(option, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_configured_private_key_that_differs_from_the_saved_one_is_refused()
    {
        var server = await StartServerAsync();
        string state = Path.Combine(_root.FullName, "keyed");
        var a = await StartNodeAsync(server, "a", state);
        await a.DisposeAsync();

        var options = ControlOptions(server, "a", state, FakeControlServer.ValidAuthKey);
        options.PrivateKey = NodePrivateKey.Generate();
        await using var node = new MeshNode(options);
        var ex = await Assert.ThrowsAsync<MeshConfigurationException>(() => node.StartAsync());
        Assert.Equal("MeshNodeOptions.PrivateKey", ex.Option);
    }

    // ------------------------------------------------------------------ helpers

    private async Task<FakeControlServer> StartServerAsync()
    {
        var server = await FakeControlServer.StartAsync();
        _owned.Add(server);
        return server;
    }

    private MeshNodeOptions ControlOptions(FakeControlServer server, string hostname, string? stateDirectory, string? authKey) => new()
    {
        ControlUrl = server.Url,
        AuthKey = authKey,
        Hostname = hostname,
        StateDirectory = stateDirectory,
        ListenAddress = IPAddress.Loopback,
    };

    private async Task<MeshNode> StartNodeAsync(FakeControlServer server, string hostname, string? stateDirectory = null, string? authKey = FakeControlServer.ValidAuthKey)
    {
        var factory = LoggerFactory.Create(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Trace));
        var node = new MeshNode(ControlOptions(server, hostname, stateDirectory, authKey), factory);
        _owned.Add(new Owned(factory));
        _owned.Add(node);
        await node.StartAsync();
        return node;
    }

    private static string[] SavedPeerKeys(string stateDirectory)
    {
        string path = Path.Combine(stateDirectory, "peers.json");
        if (!File.Exists(path))
        {
            return [];
        }

        var map = System.Text.Json.JsonSerializer.Deserialize<Control.PeerMapMessage>(File.ReadAllText(path), Json);
        return map?.Peers?.Select(p => p.PublicKey).ToArray() ?? [];
    }

    private static async Task<MeshPeerStatus> WaitForPeerAsync(MeshNode node, string name)
    {
        MeshPeerStatus? found = null;
        await WaitUntilAsync(() => (found = node.GetStatus().FindPeer(name)) is not null, $"peer {name} appears");
        return found!;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting until {what}.");
            }

            await Task.Delay(20);
        }
    }

    private static async Task AssertEchoAsync(MeshNode from, MeshTcpListener listener, string host, int port)
    {
        using var cts = new CancellationTokenSource(Deadline);
        var accept = listener.AcceptAsync(cts.Token).AsTask();
        await using var client = await from.DialAsync(host, port, cts.Token);
        await using var server = await accept;
        byte[] hello = Encoding.ASCII.GetBytes("hello " + host);
        await client.WriteAsync(hello, cts.Token);
        await client.FlushAsync(cts.Token);
        byte[] received = new byte[hello.Length];
        await server.ReadExactlyAsync(received, cts.Token);
        Assert.Equal(hello, received);
        await server.WriteAsync(received, cts.Token);
        await server.FlushAsync(cts.Token);
        byte[] echoed = new byte[hello.Length];
        await client.ReadExactlyAsync(echoed, cts.Token);
        Assert.Equal(hello, echoed);
    }

    private sealed class Owned(IDisposable inner) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            inner.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
