using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Tests.Hosting;

/// <summary>services.AddMeshNode in a generic host: start and stop with the host, options, keyed nodes, logging, health.</summary>
public sealed class AddMeshNodeTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);
    private static readonly IPAddress IpA = IPAddress.Parse("100.64.0.1");
    private static readonly IPAddress IpB = IPAddress.Parse("100.64.0.2");

    /// <summary>A static node at 100.64.0.1 with a new key and no peers, on loopback, without DNS.</summary>
    private static void StandAlone(MeshNodeOptions o)
    {
        o.PrivateKey = NodePrivateKey.Generate();
        o.ListenAddress = IPAddress.Loopback;
        o.EnableDns = false;
        o.Addresses.Add(IpA);
    }

    internal static HostApplicationBuilder Builder()
    {
        // No defaults: no appsettings.json watchers or console logger in the test process.
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        return builder;
    }

    /// <summary>Two static nodes "a" and "b" in one host, each the other's peer; b knows a's port once a has started.</summary>
    internal static void AddPair(IServiceCollection services, NodePrivateKey keyA, NodePrivateKey keyB)
    {
        services.AddMeshNode("a", o =>
        {
            o.PrivateKey = keyA;
            o.ListenAddress = IPAddress.Loopback;
            o.EnableDns = false;
            o.Addresses.Add(IpA);
            var peer = new MeshPeerOptions { PublicKey = keyB.PublicKey };
            peer.AllowedIPs.Add(new IPNetwork(IpB, 32));
            o.Peers.Add(peer);
        });
        services.AddMeshNode("b", o =>
        {
            o.PrivateKey = keyB;
            o.ListenAddress = IPAddress.Loopback;
            o.EnableDns = false;
            o.Addresses.Add(IpB);
        });

        // Options are read when the node is created, in the host's start, after "a" has started.
        services.AddOptions<MeshNodeOptions>("b").Configure<IServiceProvider>((o, sp) =>
        {
            var a = sp.GetRequiredKeyedService<MeshNode>("a");
            var peer = new MeshPeerOptions { PublicKey = keyA.PublicKey, Endpoint = new IPEndPoint(IPAddress.Loopback, a.ListenPort) };
            peer.AllowedIPs.Add(new IPNetwork(IpA, 32));
            o.Peers.Add(peer);
        });
    }

    [Fact]
    public async Task Two_keyed_nodes_start_with_the_host_reach_each_other_and_stop_with_it()
    {
        var keyA = NodePrivateKey.Generate();
        var keyB = NodePrivateKey.Generate();
        var builder = Builder();
        var logs = new ListLoggerProvider();
        builder.Logging.AddProvider(logs);
        AddPair(builder.Services, keyA, keyB);
        using var host = builder.Build();
        var a = host.Services.GetRequiredKeyedService<MeshNode>("a");
        Assert.False(a.IsRunning);
        Assert.Null(host.Services.GetService<MeshNode>()); // no unnamed node was registered

        // b's options read a's port: b must not be created before a has started (the host creates it in its start).
        await host.StartAsync().WaitAsync(Limit);
        var b = host.Services.GetRequiredKeyedService<MeshNode>("b");
        Assert.NotSame(a, b);
        Assert.True(a.IsRunning);
        Assert.True(b.IsRunning);
        Assert.Equal(keyA.PublicKey, a.PublicKey);
        await b.PingAsync(IpA, Limit);
        await a.PingAsync(IpB, Limit);
        Assert.Contains(logs.Lines, l => l.Contains("MeshNode: Mesh node " + keyA.PublicKey, StringComparison.Ordinal));

        int portA = a.ListenPort;
        await host.StopAsync().WaitAsync(Limit);
        Assert.False(a.IsRunning);
        Assert.False(b.IsRunning);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => a.PingAsync(IpB));

        // The UDP port is free again.
        using var again = new System.Net.Sockets.UdpClient(new IPEndPoint(IPAddress.Loopback, portA));
    }

    [Fact]
    public async Task An_unnamed_node_resolves_as_MeshNode_and_GetStartedMeshNodeAsync_shares_the_hosts_start()
    {
        var builder = Builder();
        builder.Services.AddMeshNode(StandAlone);
        int created = 0;
        builder.Services.AddOptions<MeshNodeOptions>().PostConfigure(_ => created++);
        using var host = builder.Build();

        // Something that runs before the host (e.g. a server binding listeners) gets the node started.
        var node = await host.Services.GetStartedMeshNodeAsync().WaitAsync(Limit);
        Assert.True(node.IsRunning);
        Assert.Same(node, host.Services.GetRequiredService<MeshNode>());
        await host.StartAsync().WaitAsync(Limit); // must not start it a second time (that would throw)
        Assert.Same(node, await host.Services.GetStartedMeshNodeAsync());
        Assert.Equal(1, created);

        var missing = await Assert.ThrowsAsync<InvalidOperationException>(() => host.Services.GetStartedMeshNodeAsync("nope"));
        Assert.Contains("'nope'", missing.Message, StringComparison.Ordinal);
        await host.StopAsync().WaitAsync(Limit);
        Assert.False(node.IsRunning);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => host.Services.GetStartedMeshNodeAsync());
    }

    [Fact]
    public void Registering_the_same_node_twice_is_refused_with_a_hint()
    {
        var services = new ServiceCollection();
        services.AddMeshNode(_ => { });
        var unnamed = Assert.Throws<InvalidOperationException>(() => services.AddMeshNode(_ => { }));
        Assert.Contains("give each node a name", unnamed.Message, StringComparison.Ordinal);
        services.AddMeshNode("x", _ => { });
        Assert.Throws<InvalidOperationException>(() => services.AddMeshNode("x", _ => { }));
    }

    [Fact]
    public async Task A_bad_option_fails_the_hosts_start_naming_it_and_logs_it()
    {
        var builder = Builder();
        var logs = new ListLoggerProvider();
        builder.Logging.AddProvider(logs);
        builder.Services.AddMeshNode(o =>
        {
            o.PrivateKey = NodePrivateKey.Generate();
            o.ListenAddress = IPAddress.Loopback;
            o.Addresses.Add(IpA);
            o.Mtu = 100;
        });
        using var host = builder.Build();
        var ex = await Assert.ThrowsAsync<MeshConfigurationException>(() => host.StartAsync().WaitAsync(Limit));
        Assert.Contains("Mtu", ex.Option, StringComparison.Ordinal);
        Assert.Contains(logs.Lines, l => l.Contains("did not start", StringComparison.Ordinal) && l.Contains("Mtu", StringComparison.Ordinal));
        Assert.False(host.Services.GetRequiredService<MeshNode>().IsRunning);
    }

    [Fact]
    public async Task A_configuration_section_configures_the_node()
    {
        var key = NodePrivateKey.Generate();
        var peerKey = NodePrivateKey.Generate().PublicKey;
        var builder = Builder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["MeshNode:PrivateKey"] = key.ToBase64(),
            ["MeshNode:ListenAddress"] = "127.0.0.1",
            ["MeshNode:Addresses:0"] = "100.64.0.7",
            ["MeshNode:EnableDns"] = "false",
            ["MeshNode:Mtu"] = "1380",
            ["MeshNode:Peers:0:PublicKey"] = peerKey.ToString(),
            ["MeshNode:Peers:0:AllowedIPs"] = "100.64.0.8/32, 10.9.0.0/16",
            ["MeshNode:Peers:0:PersistentKeepalive"] = "25",
        });
        builder.Services.AddMeshNode(builder.Configuration.GetSection("MeshNode"));
        using var host = builder.Build();
        var options = host.Services.GetRequiredService<IOptionsMonitor<MeshNodeOptions>>().Get(Options.DefaultName);
        Assert.Equal(1380, options.Mtu);
        Assert.Equal(IPAddress.Loopback, options.ListenAddress);
        var peer = Assert.Single(options.Peers);
        Assert.Equal(peerKey, peer.PublicKey);
        Assert.Equal([IPNetwork.Parse("100.64.0.8/32"), IPNetwork.Parse("10.9.0.0/16")], peer.AllowedIPs);
        Assert.Equal(TimeSpan.FromSeconds(25), peer.PersistentKeepalive);

        await host.StartAsync().WaitAsync(Limit);
        var node = host.Services.GetRequiredService<MeshNode>();
        Assert.Equal(IPAddress.Parse("100.64.0.7"), node.Address);
        Assert.Equal(key.PublicKey, node.PublicKey);
        await host.StopAsync().WaitAsync(Limit);
    }

    [Theory]
    [InlineData("MeshNode:Hostnme", "orders", "MeshNode:Hostnme", "is not an option")]
    [InlineData("MeshNode:ListenPort", "80000", "MeshNode:ListenPort", "not a port")]
    [InlineData("MeshNode:ListenPort", "eighty", "MeshNode:ListenPort", "not a whole number")]
    [InlineData("MeshNode:Addresses:1", "100.64.0.300", "MeshNode:Addresses:1", "not an IP address")]
    [InlineData("MeshNode:ControlUrl", "mesh.example.com", "MeshNode:ControlUrl", "absolute http(s) URL")]
    [InlineData("MeshNode:Ephemeral", "yes", "MeshNode:Ephemeral", "true or false")]
    [InlineData("MeshNode:Peers:0:Endpoint", "[::1:51820", "MeshNode:Peers:0:Endpoint", "host:port")]
    [InlineData("MeshNode:Peers:0:AllowedIPs:0", "10.0.0.0/33", "MeshNode:Peers:0:AllowedIPs:0", "prefix")]
    [InlineData("MeshNode:Peers:0:Keepalive", "25", "MeshNode:Peers:0:Keepalive", "is not an option of MeshPeerOptions")]
    [InlineData("MeshNode:Peers:0:PublicKey", "short", "MeshNode:Peers:0:PublicKey", "public key")]
    public async Task A_bad_configuration_value_fails_the_start_naming_its_path(string key, string value, string option, string reason)
    {
        var builder = Builder();
        var values = new Dictionary<string, string?>
        {
            ["MeshNode:PrivateKey"] = NodePrivateKey.Generate().ToBase64(),
            ["MeshNode:ListenAddress"] = "127.0.0.1",
            ["MeshNode:Addresses:0"] = "100.64.0.7",
            ["MeshNode:Peers:0:PublicKey"] = NodePrivateKey.Generate().PublicKey.ToString(),
        };
        values[key] = value;
        builder.Configuration.AddInMemoryCollection(values);
        builder.Services.AddMeshNode(builder.Configuration.GetSection("MeshNode"));
        using var host = builder.Build();
        var ex = await Assert.ThrowsAsync<MeshConfigurationException>(() => host.StartAsync().WaitAsync(Limit));
        Assert.Equal(option, ex.Option);
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_json_file_binds_like_appsettings()
    {
        var key = NodePrivateKey.Generate();
        string json = $$"""
            {
              "MeshNode": {
                "ControlUrl": "http://127.0.0.1:8080",
                "AuthKey": "tmk-example",
                "Hostname": "orders",
                "StateDirectory": "/var/lib/orders/mesh",
                "Ephemeral": true,
                "ListenPort": 41641,
                "DnsUpstream": "127.0.0.53:53",
                "Peers": [ { "PublicKey": "{{key.PublicKey}}", "Endpoint": "gw.example:51820", "AllowedIPs": [ "100.64.0.9/32" ], "PersistentKeepalive": "00:00:30" } ]
              }
            }
            """;
        var configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json))).Build();
        var options = new MeshNodeOptions();
        TunnelMesh.Net.Hosting.MeshNodeConfiguration.Bind(configuration.GetSection("MeshNode"), options);
        Assert.Equal(new Uri("http://127.0.0.1:8080"), options.ControlUrl);
        Assert.Equal("tmk-example", options.AuthKey);
        Assert.Equal("orders", options.Hostname);
        Assert.Equal("/var/lib/orders/mesh", options.StateDirectory);
        Assert.True(options.Ephemeral);
        Assert.Equal(41641, options.ListenPort);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("127.0.0.53"), 53), options.DnsUpstream);
        var peer = Assert.Single(options.Peers);
        Assert.Equal(new DnsEndPoint("gw.example", 51820), peer.Endpoint);
        Assert.Equal(TimeSpan.FromSeconds(30), peer.PersistentKeepalive);
        Assert.True(options.EnableDns); // absent keys keep their defaults
        Assert.Equal(1420, options.Mtu);
    }

    [Fact]
    public async Task The_health_check_follows_the_node_from_unhealthy_to_healthy_and_back()
    {
        var builder = Builder();
        builder.Services.AddMeshNode("edge", StandAlone);
        builder.Services.AddHealthChecks().AddMeshNode("edge");
        using var host = builder.Build();
        var health = host.Services.GetRequiredService<HealthCheckService>();

        var before = await health.CheckHealthAsync();
        Assert.Equal(HealthStatus.Unhealthy, before.Entries["mesh-node:edge"].Status);

        await host.StartAsync().WaitAsync(Limit);
        var running = await health.CheckHealthAsync();
        var entry = running.Entries["mesh-node:edge"];
        Assert.Equal(HealthStatus.Healthy, entry.Status);
        Assert.Equal("100.64.0.1", entry.Data["address"]);
        Assert.Equal(false, entry.Data["controlConnected"]);

        await host.StopAsync().WaitAsync(Limit);
        var after = await health.CheckHealthAsync();
        Assert.Equal(HealthStatus.Unhealthy, after.Entries["mesh-node:edge"].Status);
        Assert.Contains("not running", after.Entries["mesh-node:edge"].Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AddMeshSocks5_serves_through_a_keyed_node_with_the_host_and_stops_with_it()
    {
        var builder = Builder();
        AddPair(builder.Services, NodePrivateKey.Generate(), NodePrivateKey.Generate());
        builder.Services.AddMeshSocks5(o => o.ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0), nodeName: "b");
        using var host = builder.Build();
        await host.StartAsync().WaitAsync(Limit);
        var a = host.Services.GetRequiredKeyedService<MeshNode>("a");
        var socks = host.Services.GetRequiredKeyedService<TunnelMesh.Net.Socks.MeshSocks5Server>("b");
        Assert.Null(host.Services.GetService<TunnelMesh.Net.Socks.MeshSocks5Server>());
        var proxy = socks.LocalEndPoint;

        await using var listener = await a.ListenAsync(7000);
        var accept = listener.AcceptAsync().AsTask();
        await using (var client = await Socks.RawSocksClient.ConnectAsync(proxy))
        {
            await client.NoAuthAsync();
            var reply = await client.RequestAsync(Socks.RawSocksClient.ConnectIPv4(IpA, 7000));
            Assert.Equal(0, reply.Code);
            await using var server = await accept.WaitAsync(Limit);
            Assert.Equal(IpB, server.RemoteEndPoint.Address); // dialled from node b
            await client.SendAsync(1, 2, 3);
            var got = new byte[3];
            await server.ReadExactlyAsync(got).AsTask().WaitAsync(Limit);
            Assert.Equal(new byte[] { 1, 2, 3 }, got);
        }

        await host.StopAsync().WaitAsync(Limit);
        using var probe = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(() => probe.ConnectAsync(proxy).WaitAsync(Limit));
        Assert.Equal(System.Net.Sockets.SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public async Task A_bad_socks5_option_fails_the_hosts_start_naming_it()
    {
        var builder = Builder();
        builder.Services.AddMeshNode(StandAlone);
        builder.Services.AddMeshSocks5(o => o.ListenEndPoint = new IPEndPoint(IPAddress.Any, 0));
        using var host = builder.Build();
        var ex = await Assert.ThrowsAsync<MeshConfigurationException>(() => host.StartAsync().WaitAsync(Limit));
        Assert.Contains("ListenEndPoint", ex.Option, StringComparison.Ordinal);
        await host.StopAsync().WaitAsync(Limit);
    }
}
