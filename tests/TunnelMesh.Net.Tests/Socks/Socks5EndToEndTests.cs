using System.Net.Sockets;
using TunnelMesh.Net.Socks;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Tests.Socks;

/// <summary>The proxy between real clients (curl, a socket) and a service on another MeshNode.</summary>
public sealed class Socks5EndToEndTests(SocksMesh mesh) : IClassFixture<SocksMesh>
{
    private const long TransferSize = 16L << 20;
    private static readonly TimeSpan Limit = RawSocksClient.Limit;

    [ExternalFact("curl")]
    public async Task Curl_reaches_the_mesh_HTTP_service_through_socks5_hostname_and_socks5()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync();
        string proxy = server.LocalEndPoint.ToString();
        string url = $"http://{SocksMesh.AddressB}/";

        // --socks5-hostname sends the host as a name (ATYP 3, here an IP literal); --socks5 sends the address (ATYP 1).
        foreach (string option in new[] { "--socks5-hostname", "--socks5" })
        {
            ProcessRunner.Result r = await ProcessRunner.RunAsync("curl", ["-sS", "--max-time", "20", option, proxy, url], TimeSpan.FromSeconds(30));
            Assert.True(r.ExitCode == 0, $"curl {option} exited {r.ExitCode}: {r.Stderr}");
            Assert.Equal(SocksMesh.HttpBody, r.Stdout);
        }

        Assert.Equal(2, server.GetStatistics().Succeeded);
    }

    [ExternalFact("curl")]
    public async Task Curl_with_username_and_password_succeeds_and_a_wrong_password_fails()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync(o => (o.Username, o.Password) = ("alice", "s3cret"));
        string url = $"http://{SocksMesh.AddressB}/";

        ProcessRunner.Result ok = await ProcessRunner.RunAsync("curl", ["-sS", "--max-time", "20", "--proxy", $"socks5h://alice:s3cret@{server.LocalEndPoint}", url], TimeSpan.FromSeconds(30));
        Assert.True(ok.ExitCode == 0, $"curl exited {ok.ExitCode}: {ok.Stderr}");
        Assert.Equal(SocksMesh.HttpBody, ok.Stdout);

        ProcessRunner.Result wrong = await ProcessRunner.RunAsync("curl", ["-sS", "--max-time", "20", "--proxy", $"socks5h://alice:guess@{server.LocalEndPoint}", url], TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, wrong.ExitCode);
        Assert.Equal("", wrong.Stdout);
        Assert.Equal(1, server.GetStatistics().AuthenticationFailures);

        ProcessRunner.Result none = await ProcessRunner.RunAsync("curl", ["-sS", "--max-time", "20", "--socks5-hostname", server.LocalEndPoint.ToString(), url], TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, none.ExitCode);
        Assert.Equal(1, server.GetStatistics().NoAcceptableMethod);
    }

    [ExternalFact("curl")]
    public async Task Curl_gets_a_clear_error_for_an_unknown_name_and_a_closed_port()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync();
        string proxy = server.LocalEndPoint.ToString();

        ProcessRunner.Result unknown = await ProcessRunner.RunAsync("curl", ["-sS", "--max-time", "20", "--socks5-hostname", proxy, "http://nosuchnode/"], TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, unknown.ExitCode);
        ProcessRunner.Result refused = await ProcessRunner.RunAsync("curl", ["-sS", "--max-time", "20", "--socks5-hostname", proxy, $"http://{SocksMesh.AddressB}:{SocksMesh.ClosedPort}/"], TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, refused.ExitCode);

        MeshSocks5Statistics stats = server.GetStatistics();
        Assert.Equal(1, stats.FailedByReply.GetValueOrDefault(Socks5Reply.HostUnreachable));
        Assert.Equal(1, stats.FailedByReply.GetValueOrDefault(Socks5Reply.ConnectionRefused));
    }

    [Fact]
    public async Task Sixteen_MiB_each_way_at_once_arrive_intact_and_half_close_passes_through()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync();
        await using MeshTcpListener listener = await mesh.B.ListenAsync(9001);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(180));
        Task<MeshTcpStream> accepting = listener.AcceptAsync(cts.Token).AsTask();

        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        await client.NoAuthAsync();
        Assert.Equal((byte)Socks5Reply.Succeeded, (await client.RequestAsync(RawSocksClient.ConnectIPv4(SocksMesh.AddressB, 9001))).Code);
        await using MeshTcpStream far = await accepting.Within(Limit, "node B accepts the proxied connection");
        await using var near = new NetworkStream(client.Socket, ownsSocket: false);

        Task<TcpTransfer.Outcome> upReceived = TcpTransfer.ReceiveAsync(far, cancellationToken: cts.Token);
        Task<TcpTransfer.Outcome> downReceived = TcpTransfer.ReceiveAsync(near, cancellationToken: cts.Token);
        Task<TcpTransfer.Outcome> upSent = TcpTransfer.SendAsync(near, TransferSize, 1, () => { client.Socket.Shutdown(SocketShutdown.Send); return Task.CompletedTask; }, cts.Token);
        Task<TcpTransfer.Outcome> downSent = TcpTransfer.SendAsync(far, TransferSize, 2, async () => await far.ShutdownSendAsync(), cts.Token);

        // Each receiver reads to end of stream, so each FIN crossed the proxy.
        TcpTransfer.AssertSame(await upSent, await upReceived.Within(TimeSpan.FromSeconds(180), "16 MiB client -> mesh"), "client -> mesh");
        TcpTransfer.AssertSame(await downSent, await downReceived.Within(TimeSpan.FromSeconds(180), "16 MiB mesh -> client"), "mesh -> client");

        await TaskTimeouts.Until(() => server.GetStatistics().Active == 0, Limit, "the relay closes after both directions finished");
        MeshSocks5Statistics stats = server.GetStatistics();
        Assert.Equal(TransferSize, stats.BytesFromClients);
        Assert.Equal(TransferSize, stats.BytesToClients);
    }

    [Fact]
    public async Task One_direction_can_finish_while_the_other_goes_on()
    {
        await using MeshSocks5Server server = await mesh.StartServerAsync();
        await using MeshTcpListener listener = await mesh.B.ListenAsync(9002);
        Task<MeshTcpStream> accepting = listener.AcceptAsync().AsTask();
        await using RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
        await client.NoAuthAsync();
        Assert.Equal((byte)Socks5Reply.Succeeded, (await client.RequestAsync(RawSocksClient.ConnectIPv4(SocksMesh.AddressB, 9002))).Code);
        await using MeshTcpStream far = await accepting.Within(Limit, "accept");

        // The client finishes sending first: B sees end of stream but can still answer.
        await client.SendAsync("request"u8.ToArray());
        client.Socket.Shutdown(SocketShutdown.Send);
        byte[] got = await TcpTransfer.ReadToEndAsync(far).Within(Limit, "B reads to the client's FIN");
        Assert.Equal("request"u8.ToArray(), got);
        await far.WriteAsync("answer after FIN"u8.ToArray());
        Assert.Equal("answer after FIN"u8.ToArray(), await client.ReadAsync(16));
        await far.ShutdownSendAsync();
        Assert.True(await client.IsClosedByServerAsync(), "B's FIN reaches the client");
    }

    [Fact]
    public async Task Disposing_the_server_closes_every_proxied_connection()
    {
        MeshSocks5Server server = await mesh.StartServerAsync();
        await using MeshTcpListener listener = await mesh.B.ListenAsync(9003);
        var clients = new List<RawSocksClient>();
        var far = new List<MeshTcpStream>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                Task<MeshTcpStream> accepting = listener.AcceptAsync().AsTask();
                RawSocksClient client = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
                clients.Add(client);
                await client.NoAuthAsync();
                Assert.Equal((byte)Socks5Reply.Succeeded, (await client.RequestAsync(RawSocksClient.ConnectIPv4(SocksMesh.AddressB, 9003))).Code);
                far.Add(await accepting.Within(Limit, "accept"));
            }

            // One more that is still in its handshake.
            RawSocksClient handshaking = await RawSocksClient.ConnectAsync(server.LocalEndPoint);
            clients.Add(handshaking);
            await handshaking.SendAsync(5, 1);
            await TaskTimeouts.Until(() => server.GetStatistics().Active == 4, Limit, "four connections open");

            await server.DisposeAsync().AsTask().Within(Limit, "dispose");
            Assert.Equal(0, server.GetStatistics().Active);

            foreach (RawSocksClient client in clients)
            {
                Assert.True(await client.IsClosedByServerAsync(), "the client side is closed");
            }

            foreach (MeshTcpStream stream in far)
            {
                await AssertEndsAsync(stream);
            }

            await server.DisposeAsync();
        }
        finally
        {
            foreach (RawSocksClient client in clients)
            {
                await client.DisposeAsync();
            }

            foreach (MeshTcpStream stream in far)
            {
                await stream.DisposeAsync();
            }
        }
    }

    /// <summary>The mesh side sees the reset (or end of stream) within the limit.</summary>
    private static async Task AssertEndsAsync(MeshTcpStream stream)
    {
        using var cts = new CancellationTokenSource(Limit);
        try
        {
            int n = await stream.ReadAsync(new byte[16], cts.Token);
            Assert.Equal(0, n);
        }
        catch (IOException)
        {
            // Reset: the proxy aborted the mesh connection.
        }
    }
}
