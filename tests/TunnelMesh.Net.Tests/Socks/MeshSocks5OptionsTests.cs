using System.Net;
using System.Net.Sockets;
using TunnelMesh.Net.Socks;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Tests.Socks;

public sealed class MeshSocks5OptionsTests
{
    private static MeshNode IdleNode() =>
        new(NodePair.Options(NodePrivateKey.Generate(), IPAddress.Parse("100.64.8.1"), NodePrivateKey.Generate().PublicKey, IPAddress.Parse("100.64.8.2"), null, null));

    [Fact]
    public void Defaults_are_loopback_1080_no_auth_10s_1024()
    {
        var o = new MeshSocks5Options();
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 1080), o.ListenEndPoint);
        Assert.False(o.AllowNonLoopback);
        Assert.Null(o.Username);
        Assert.Null(o.Password);
        Assert.Equal(TimeSpan.FromSeconds(10), o.HandshakeTimeout);
        Assert.Equal(1024, o.MaxConnections);
        Assert.Equal(TimeSpan.FromSeconds(30), o.ConnectTimeout);
    }

    public static TheoryData<string, Action<MeshSocks5Options>> Invalid => new()
    {
        { "MeshSocks5Options.ListenEndPoint", o => o.ListenEndPoint = new IPEndPoint(IPAddress.Any, 0) },
        { "MeshSocks5Options.ListenEndPoint", o => o.ListenEndPoint = new IPEndPoint(IPAddress.Parse("192.0.2.1"), 0) },
        { "MeshSocks5Options.ListenEndPoint", o => o.ListenEndPoint = null! },
        { "MeshSocks5Options.Password", o => o.Username = "alice" },
        { "MeshSocks5Options.Username", o => o.Password = "s3cret" },
        { "MeshSocks5Options.Username", o => (o.Username, o.Password) = ("", "s3cret") },
        { "MeshSocks5Options.Password", o => (o.Username, o.Password) = ("alice", new string('x', 256)) },
        { "MeshSocks5Options.HandshakeTimeout", o => o.HandshakeTimeout = TimeSpan.Zero },
        { "MeshSocks5Options.HandshakeTimeout", o => o.HandshakeTimeout = TimeSpan.FromHours(1) },
        { "MeshSocks5Options.ConnectTimeout", o => o.ConnectTimeout = TimeSpan.FromTicks(-1) },
        { "MeshSocks5Options.MaxConnections", o => o.MaxConnections = 0 },
        { "MeshSocks5Options.MaxConnections", o => o.MaxConnections = 2_000_000 },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public async Task StartAsync_refuses_invalid_options_naming_the_option(string option, Action<MeshSocks5Options> configure)
    {
        await using MeshNode node = IdleNode();
        var options = new MeshSocks5Options { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0), Password = null };
        configure(options);
        await using var server = new MeshSocks5Server(node, options);
        var ex = await Assert.ThrowsAsync<MeshConfigurationException>(() => server.StartAsync());
        Assert.Equal(option, ex.Option);
        Assert.Throws<InvalidOperationException>(() => server.LocalEndPoint);
    }

    [Fact]
    public async Task A_non_loopback_address_is_allowed_with_AllowNonLoopback()
    {
        await using MeshNode node = IdleNode();
        await using var server = new MeshSocks5Server(node, new MeshSocks5Options { ListenEndPoint = new IPEndPoint(IPAddress.Any, 0), AllowNonLoopback = true });
        await server.StartAsync();
        Assert.Equal(IPAddress.Any, server.LocalEndPoint.Address);
        Assert.NotEqual(0, server.LocalEndPoint.Port);
    }

    [Fact]
    public async Task The_password_is_not_in_the_exception_message()
    {
        await using MeshNode node = IdleNode();
        string secret = "p" + new string('w', 300);
        await using var server = new MeshSocks5Server(node, new MeshSocks5Options { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0), Username = "alice", Password = secret });
        var ex = await Assert.ThrowsAsync<MeshConfigurationException>(() => server.StartAsync());
        Assert.DoesNotContain("pwww", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_port_in_use_fails_with_a_SocketException_and_started_twice_is_refused()
    {
        await using MeshNode node = IdleNode();
        await using var first = new MeshSocks5Server(node, new MeshSocks5Options { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) });
        await first.StartAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => first.StartAsync());

        await using var second = new MeshSocks5Server(node, new MeshSocks5Options { ListenEndPoint = first.LocalEndPoint });
        var ex = await Assert.ThrowsAsync<SocketException>(() => second.StartAsync());
        Assert.Equal(SocketError.AddressAlreadyInUse, ex.SocketErrorCode);
    }

    [Fact]
    public async Task Dispose_closes_the_listener_is_safe_twice_and_start_afterwards_is_refused()
    {
        await using MeshNode node = IdleNode();
        var server = new MeshSocks5Server(node, new MeshSocks5Options { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) });
        await server.StartAsync();
        IPEndPoint endpoint = server.LocalEndPoint;
        await server.DisposeAsync();
        await server.DisposeAsync();

        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await probe.ConnectAsync(endpoint));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => server.StartAsync());
    }

    [Fact]
    public async Task Dispose_without_start_is_harmless()
    {
        await using MeshNode node = IdleNode();
        var server = new MeshSocks5Server(node, new MeshSocks5Options());
        await server.DisposeAsync();
        await server.DisposeAsync();
        Assert.Equal(0, server.GetStatistics().Accepted);
    }
}
