using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Socks;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Tests.Socks;

/// <summary>Crafted RFC 1928 / RFC 1929 bytes over a real loopback TCP socket to the proxy, which dials through node A to node B.</summary>
public sealed class Socks5ProtocolTests(SocksMesh mesh) : IClassFixture<SocksMesh>
{
    private static readonly TimeSpan Limit = RawSocksClient.Limit;

    [Fact]
    public async Task No_auth_CONNECT_by_IPv4_replies_success_with_the_mesh_endpoint_and_relays_both_ways()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync();
        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);

        await client.NoAuthAsync();
        RawSocksClient.Reply reply = await client.RequestAsync(RawSocksClient.ConnectIPv4(SocksMesh.AddressB, SocksMesh.EchoPort));

        Assert.Equal((byte)Socks5Reply.Succeeded, reply.Code);
        Assert.Equal(SocksMesh.AddressA, reply.Bound.Address); // BND.ADDR: the mesh connection's local end on node A
        Assert.InRange(reply.Bound.Port, 1, 65535);
        await AssertEchoAsync(client, "ping through socks");
        Assert.Equal(1, server.GetStatistics().Succeeded);
    }

    [Fact]
    public async Task Greeting_with_many_methods_picks_no_auth_and_a_client_without_it_gets_0xFF_then_close()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync();
        await using (RawSocksClient many = await RawSocksClient.ConnectAsync(server.LocalEndPoint))
        {
            await many.SendAsync(5, 3, 0x80, 0x02, 0x00);
            Assert.Equal(new byte[] { 5, 0 }, await many.ReadAsync(2));
        }

        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        await client.SendAsync(5, 2, 0x01, 0x02); // GSSAPI and username/password, but this server has no credentials
        Assert.Equal(new byte[] { 5, 0xFF }, await client.ReadAsync(2));
        Assert.True(await client.IsClosedByServerAsync(), "closed after 0xFF");
        await TaskTimeouts.Until(() => server.GetStatistics().NoAcceptableMethod == 1, Limit, "the 0xFF is counted");
    }

    [Fact]
    public async Task Auth_server_offers_only_username_password()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync(o => (o.Username, o.Password) = ("alice", "s3cret"));
        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        await client.SendAsync(5, 1, 0); // no-auth only
        Assert.Equal(new byte[] { 5, 0xFF }, await client.ReadAsync(2));
        Assert.True(await client.IsClosedByServerAsync());
    }

    [Fact]
    public async Task RFC1929_success_then_CONNECT_relays()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync(o => (o.Username, o.Password) = ("alice", "pässwörd"));
        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);

        Assert.Equal(0, await client.LoginAsync("alice", "pässwörd"));
        RawSocksClient.Reply reply = await client.RequestAsync(RawSocksClient.ConnectIPv4(SocksMesh.AddressB, SocksMesh.EchoPort));
        Assert.Equal((byte)Socks5Reply.Succeeded, reply.Code);
        await AssertEchoAsync(client, "authenticated");
        Assert.Equal(0, server.GetStatistics().AuthenticationFailures);
    }

    [Theory]
    [InlineData("alice", "wrong")]
    [InlineData("mallory", "s3cret")]
    [InlineData("alic", "s3cret")]
    [InlineData("alice", "s3cret-and-more")]
    public async Task RFC1929_failure_answers_a_non_zero_status_and_closes(string user, string password)
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync(o => (o.Username, o.Password) = ("alice", "s3cret"));
        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);

        Assert.NotEqual(0, await client.LoginAsync(user, password));
        Assert.True(await client.IsClosedByServerAsync(), "closed after the failure status");
        await TaskTimeouts.Until(() => server.GetStatistics().AuthenticationFailures == 1, Limit, "the failure is counted");
        Assert.Equal(0, server.GetStatistics().Succeeded);
    }

    [Fact]
    public async Task RFC1929_with_a_bad_subnegotiation_version_closes_without_status()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync(o => (o.Username, o.Password) = ("alice", "s3cret"));
        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        await client.SendAsync(5, 1, 2);
        Assert.Equal(new byte[] { 5, 2 }, await client.ReadAsync(2));
        byte[] wrongVersion = RawSocksClient.UserPassword("alice", "s3cret");
        wrongVersion[0] = 5;
        await client.SendAsync(wrongVersion);
        Assert.True(await client.IsClosedByServerAsync());
        await TaskTimeouts.Until(() => server.GetStatistics().ProtocolErrors == 1, Limit, "the protocol error is counted");
    }

    [Fact]
    public async Task Domain_name_ATYP_with_an_IPv4_literal_is_dialled()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync();
        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        await client.NoAuthAsync();
        RawSocksClient.Reply reply = await client.RequestAsync(RawSocksClient.ConnectName(SocksMesh.AddressB.ToString(), SocksMesh.EchoPort));
        Assert.Equal((byte)Socks5Reply.Succeeded, reply.Code);
        await AssertEchoAsync(client, "by literal");
    }

    [Fact]
    public async Task IPv4_mapped_IPv6_is_dialled_as_IPv4()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync();
        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        await client.NoAuthAsync();
        RawSocksClient.Reply reply = await client.RequestAsync(RawSocksClient.ConnectIPv6(SocksMesh.AddressB.MapToIPv6(), SocksMesh.EchoPort));
        Assert.Equal((byte)Socks5Reply.Succeeded, reply.Code);
        await AssertEchoAsync(client, "mapped");
    }

    public static TheoryData<string, byte[], Socks5Reply> FailingRequests => new()
    {
        { "IPv6 address", RawSocksClient.ConnectIPv6(IPAddress.Parse("fd7a:115c:a1e0::2"), 80), Socks5Reply.AddressTypeNotSupported },
        { "IPv6 literal as a name", RawSocksClient.ConnectName("::1", 80), Socks5Reply.AddressTypeNotSupported },
        { "unknown ATYP", [5, 1, 0, 9, 1, 2, 3, 4, 0, 80], Socks5Reply.AddressTypeNotSupported },
        { "BIND", RawSocksClient.ConnectIPv4(SocksMesh.AddressB, 80, command: 2), Socks5Reply.CommandNotSupported },
        { "UDP ASSOCIATE", RawSocksClient.ConnectIPv4(IPAddress.Any, 0, command: 3), Socks5Reply.CommandNotSupported },
        { "unknown command", RawSocksClient.ConnectName("beta", 80, command: 9), Socks5Reply.CommandNotSupported },
        { "unknown mesh name", RawSocksClient.ConnectName("nosuchnode", 80), Socks5Reply.HostUnreachable },
        { "unknown mesh FQDN", RawSocksClient.ConnectName("nosuchnode.tunnelmesh", 80), Socks5Reply.HostUnreachable },
        { "non-printable name", [5, 1, 0, 3, 2, 0, 1, 0, 80], Socks5Reply.HostUnreachable },
        { "empty name", [5, 1, 0, 3, 0, 0, 80], Socks5Reply.HostUnreachable },
        { "address no peer routes", RawSocksClient.ConnectIPv4(IPAddress.Parse("100.64.0.99"), 80), Socks5Reply.HostUnreachable },
        { "closed port", RawSocksClient.ConnectIPv4(SocksMesh.AddressB, SocksMesh.ClosedPort), Socks5Reply.ConnectionRefused },
        { "closed port by literal name", RawSocksClient.ConnectName(SocksMesh.AddressB.ToString(), SocksMesh.ClosedPort), Socks5Reply.ConnectionRefused },
        { "port 0", RawSocksClient.ConnectIPv4(SocksMesh.AddressB, 0), Socks5Reply.GeneralFailure },
    };

    [Theory]
    [MemberData(nameof(FailingRequests))]
    public async Task Failing_requests_get_their_reply_code_and_are_counted(string what, byte[] request, Socks5Reply expected)
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync();
        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        await client.NoAuthAsync();
        RawSocksClient.Reply reply = await client.RequestAsync(request);

        Assert.True((byte)expected == reply.Code, $"{what}: expected {expected}, got {(Socks5Reply)reply.Code}");
        Assert.Equal(new IPEndPoint(IPAddress.Any, 0), reply.Bound);
        Assert.True(await client.IsClosedByServerAsync(), $"{what}: closed after the failure reply");
        MeshSocks5Statistics stats = server.GetStatistics();
        Assert.Equal(1, stats.FailedByReply.GetValueOrDefault(expected));
        Assert.Equal(1, stats.Failed);
        Assert.Equal(0, stats.Succeeded);
    }

    public static TheoryData<string, byte[]> Garbage => new()
    {
        { "nothing", [] },
        { "only VER", [5] },
        { "methods cut short", [5, 3, 0] },
        { "SOCKS4 request", [4, 1, 0, 80, 100, 64, 0, 2, 0] },
        { "HTTP request", Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: beta\r\n\r\n") },
        { "TLS client hello start", [0x16, 0x03, 0x01, 0x02, 0x00, 0x01] },
        { "request cut short", [5, 1, 0, 5, 1, 0, 1, 100, 64] },
        { "request with bad VER", [5, 1, 0, 4, 1, 0, 1, 100, 64, 0, 2, 0, 7] },
        { "name cut short", [5, 1, 0, 5, 1, 0, 3, 10, (byte)'b', (byte)'e'] },
    };

    [Theory]
    [MemberData(nameof(Garbage))]
    public async Task Truncated_or_garbage_input_closes_and_the_next_client_is_served(string what, byte[] bytes)
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync();
        await using (RawSocksClient bad = await RawSocksClient.ConnectAsync(server.LocalEndPoint))
        {
            if (bytes.Length > 0)
            {
                await bad.SendAsync(bytes);
            }

            // Bad bytes are answered by a close; a cut-short message waits for more, so the client ends it.
            bad.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            Assert.True(await bad.IsClosedByServerAsync(drain: true), $"{what}: the server closes");
        }

        await TaskTimeouts.Until(() => server.GetStatistics().ProtocolErrors == 1, Limit, $"{what} counted as a protocol error");
        await AssertServesAsync(server);
    }

    [Fact]
    public async Task A_client_that_stalls_is_closed_after_HandshakeTimeout()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync(o => o.HandshakeTimeout = TimeSpan.FromMilliseconds(200));
        await using RawSocksClient stalled = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        await stalled.SendAsync(5, 1);
        Assert.True(await stalled.IsClosedByServerAsync(), "the stalled client is closed");
        Assert.Equal(1, server.GetStatistics().ProtocolErrors);
    }

    [Fact]
    public async Task A_dial_that_times_out_gets_host_unreachable_even_after_HandshakeTimeout()
    {
        // The dial outlasts the handshake timeout: the reply must still come (it was once sent with the handshake's expired token and lost).
        var logs = new ListLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        await using MeshSocks5Server server = await mesh.StartServerAsync(o => (o.HandshakeTimeout, o.ConnectTimeout) = (TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4)), factory);
        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        await client.SendAsync([5, 1, 0, .. RawSocksClient.ConnectIPv4(SocksMesh.BlackHole, 80)]);
        Assert.Equal(new byte[] { 5, 0 }, await client.ReadAsync(2));
        byte[] reply = await client.ReadAsync(10);
        Assert.Equal((byte)Socks5Reply.HostUnreachable, reply[1]);
        Assert.True(await client.IsClosedByServerAsync());
        Assert.Equal(0, server.GetStatistics().ProtocolErrors);
        Assert.Contains(logs.Lines, l => l.Contains("timed out in the mesh", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Connections_beyond_MaxConnections_are_closed_and_counted()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync(o => o.MaxConnections = 1);
        RawSocksClient first = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        await first.NoAuthAsync(); // the first is being served

        await using (RawSocksClient second = await RawSocksClient.ConnectAsync(server.LocalEndPoint))
        {
            Assert.True(await second.IsClosedByServerAsync(), "the second is closed at once");
        }

        Assert.Equal(1, server.GetStatistics().Rejected);
        await first.DisposeAsync();
        await TaskTimeouts.Until(() => server.GetStatistics().Active == 0, Limit, "the first connection is gone");
        await AssertServesAsync(server);
    }

    [Fact]
    public async Task Counters_are_published_on_the_Socks5_meter()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync();
        await AssertServesAsync(server);
        await using (RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint))
        {
            await client.NoAuthAsync();
            Assert.Equal((byte)Socks5Reply.ConnectionRefused, (await client.RequestAsync(RawSocksClient.ConnectIPv4(SocksMesh.AddressB, SocksMesh.ClosedPort))).Code);
        }

        string endpoint = server.LocalEndPoint.ToString();
        var seen = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == MeshSocks5Server.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var t = tags.ToArray().ToDictionary(k => k.Key, k => k.Value?.ToString());
            if (t.GetValueOrDefault("endpoint") == endpoint)
            {
                string key = instrument.Name + (t.TryGetValue("reply", out var r) ? "/" + r : "") + (t.TryGetValue("direction", out var d) ? "/" + d : "");
                seen[key] = value;
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();

        Assert.Equal(2, seen["tunnelmesh.socks5.connections.accepted"]);
        Assert.Equal(1, seen["tunnelmesh.socks5.requests.succeeded"]);
        Assert.Equal(1, seen["tunnelmesh.socks5.requests.failed/ConnectionRefused"]);
        Assert.Equal(0, seen["tunnelmesh.socks5.requests.failed/HostUnreachable"]);
        Assert.True(seen["tunnelmesh.socks5.bytes/from_client"] > 0);
        Assert.True(seen["tunnelmesh.socks5.bytes/to_client"] > 0);
    }

    [Fact]
    public async Task A_node_that_is_not_running_gives_general_failure()
    {
        await using var idle = new MeshNode(NodePair.Options(NodePrivateKey.Generate(), IPAddress.Parse("100.64.9.1"), NodePrivateKey.Generate().PublicKey, IPAddress.Parse("100.64.9.2"), null, null));
        await using var server = new MeshSocks5Server(idle, new MeshSocks5Options { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) });
        await server.StartAsync();
        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        await client.NoAuthAsync();
        Assert.Equal((byte)Socks5Reply.GeneralFailure, (await client.RequestAsync(RawSocksClient.ConnectIPv4(IPAddress.Parse("100.64.9.2"), 80))).Code);
    }

    /// <summary>A fresh client completes a CONNECT to the echo service and gets its bytes back.</summary>
    internal static async Task AssertServesAsync(MeshSocks5Server server)
    {
        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        await client.NoAuthAsync();
        RawSocksClient.Reply reply = await client.RequestAsync(RawSocksClient.ConnectIPv4(SocksMesh.AddressB, SocksMesh.EchoPort));
        Assert.Equal((byte)Socks5Reply.Succeeded, reply.Code);
        await AssertEchoAsync(client, "a valid client after bad ones");
    }

    /// <summary>Sends a line through the relay, reads the echo, half-closes and sees the relay close in turn.</summary>
    internal static async Task AssertEchoAsync(RawSocksClient client, string text)
    {
        byte[] line = Encoding.UTF8.GetBytes(text + "\n");
        await client.SendAsync(line);
        Assert.Equal(line, await client.ReadAsync(line.Length));
        client.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        Assert.True(await client.IsClosedByServerAsync(), "the echo side's FIN comes back through the relay");
    }
}
