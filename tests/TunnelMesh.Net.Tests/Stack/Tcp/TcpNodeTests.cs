using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Tests.Stack.Tcp;

/// <summary>TCP between two MeshNodes over loopback UDP and WireGuard: the public API end to end.</summary>
public sealed class TcpNodeTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Dial_accept_echo_and_close_both_ways()
    {
        await using var pair = await NodePair.StartAsync();
        await using var listener = await pair.B.ListenAsync(8080);
        var acceptTask = listener.AcceptAsync().AsTask();
        await using var client = await pair.A.DialAsync(NodePair.IpB, 8080).Within(Limit, "dial");
        await using var server = await acceptTask.Within(Limit, "accept");

        Assert.Equal(new IPEndPoint(NodePair.IpB, 8080), client.RemoteEndPoint);
        Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
        Assert.Equal(server.LocalEndPoint, client.RemoteEndPoint);

        var request = RandomNumberGenerator.GetBytes(100_000);
        await client.WriteAsync(request);
        await client.ShutdownSendAsync();
        var received = await ReadToEndAsync(server).Within(Limit, "server read to FIN");
        Assert.Equal(request, received);

        var response = RandomNumberGenerator.GetBytes(300_000);
        await server.WriteAsync(response);
        await server.ShutdownSendAsync();
        var back = await ReadToEndAsync(client).Within(Limit, "client read to FIN");
        Assert.Equal(response, back);
    }

    [Fact]
    public async Task Eight_mebibytes_each_way_at_once_hash_equal()
    {
        await using var pair = await NodePair.StartAsync();
        await using var listener = await pair.B.ListenAsync(9000);
        var acceptTask = listener.AcceptAsync().AsTask();
        await using var client = await pair.A.DialAsync(NodePair.IpB, 9000).Within(Limit, "dial");
        await using var server = await acceptTask.Within(Limit, "accept");
        var up = RandomNumberGenerator.GetBytes(8 << 20);
        var down = RandomNumberGenerator.GetBytes(8 << 20);
        var t1 = Task.Run(async () => { await client.WriteAsync(up); await client.ShutdownSendAsync(); });
        var t2 = Task.Run(async () => { await server.WriteAsync(down); await server.ShutdownSendAsync(); });
        var r1 = ReadToEndAsync(server);
        var r2 = ReadToEndAsync(client);
        await Task.WhenAll(t1, t2, r1, r2).Within(TimeSpan.FromSeconds(60), "8 MiB both ways");
        Assert.Equal(SHA256.HashData(up), SHA256.HashData(await r1));
        Assert.Equal(SHA256.HashData(down), SHA256.HashData(await r2));
    }

    [Fact]
    public async Task The_receive_buffer_grows_with_the_transfer_up_to_its_limit()
    {
        const int limit = 512 << 10;
        await using var pair = await NodePair.StartAsync();
        var listenerOptions = new MeshTcpListenerOptions { Connection = new MeshTcpOptions { MaxReceiveBufferSize = limit } };
        await using var listener = await pair.B.ListenAsync(9100, listenerOptions);
        var acceptTask = listener.AcceptAsync().AsTask();
        await using var client = await pair.A.DialAsync(NodePair.IpB, 9100).Within(Limit, "dial");
        await using var server = await acceptTask.Within(Limit, "accept");
        int initial = server.Connection.ReceiveBufferCapacity;

        var data = RandomNumberGenerator.GetBytes(16 << 20);
        var send = Task.Run(async () => { await client.WriteAsync(data); await client.ShutdownSendAsync(); });
        var received = await ReadToEndAsync(server).Within(TimeSpan.FromSeconds(60), "16 MiB");
        await send;
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(received));

        Assert.True(initial < limit, $"starts below the limit ({initial} B)");
        Assert.True(server.Connection.Counters.ReceiveBufferGrowths > 0, "the buffer grew while data streamed in");
        Assert.InRange(server.Connection.ReceiveBufferCapacity, initial + 1, limit);
    }

    [Fact]
    public async Task Refused_and_unreachable_are_distinct_socket_errors()
    {
        await using var pair = await NodePair.StartAsync();
        var refused = await Assert.ThrowsAsync<SocketException>(() => pair.A.DialAsync(NodePair.IpB, 81).Within(Limit, "refused dial"));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        var unreachable = await Assert.ThrowsAsync<SocketException>(() => pair.A.DialAsync(IPAddress.Parse("100.99.0.9"), 81));
        Assert.Equal(SocketError.HostUnreachable, unreachable.SocketErrorCode);
    }

    internal static async Task<byte[]> ReadToEndAsync(Stream stream)
    {
        var output = new MemoryStream();
        var buffer = new byte[65536];
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            output.Write(buffer, 0, n);
        }

        return output.ToArray();
    }
}
