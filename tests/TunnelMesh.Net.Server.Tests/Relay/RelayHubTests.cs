using System.Net;
using System.Net.WebSockets;
using TunnelMesh.Net.Server.Relay;

namespace TunnelMesh.Net.Server.Tests.Relay;

public sealed class RelayHubTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task A_request_without_a_valid_token_is_refused_with_401()
    {
        await using var host = await RelayTestHost.StartAsync();
        foreach (string? token in new[] { null, "not-a-token" })
        {
            using var socket = new ClientWebSocket();
            socket.Options.CollectHttpResponseDetails = true;
            if (token is not null)
            {
                socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
            }

            await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(host.Url, CancellationToken.None));
            Assert.Equal(HttpStatusCode.Unauthorized, socket.HttpStatusCode);
        }

        Assert.Equal(2, host.Hub.Statistics.Refused);
        Assert.Equal(0, host.Hub.ConnectionCount);
    }

    [Fact]
    public async Task Frames_are_forwarded_by_key_with_the_senders_key_in_front()
    {
        await using var host = await RelayTestHost.StartAsync();
        var a = NodePrivateKey.Generate().PublicKey;
        var b = NodePrivateKey.Generate().PublicKey;
        using var clientA = await ConnectAsync(host, a);
        using var clientB = await ConnectAsync(host, b);

        var random = new Random(7);
        foreach (int size in new[] { 1, 32, 148, 1420, 1452, 9000, 65535 })
        {
            var message = new byte[size];
            random.NextBytes(message);
            await SendAsync(clientA, b, message);
            var (source, received) = await ReceiveAsync(clientB);
            Assert.Equal(a, source);
            Assert.Equal(message, received);

            await SendAsync(clientB, a, message);
            (source, received) = await ReceiveAsync(clientA);
            Assert.Equal(b, source);
            Assert.Equal(message, received);
        }

        var stats = host.Hub.Statistics;
        Assert.Equal(14, stats.FramesForwarded);
        Assert.Equal(0, stats.DroppedUnknownDestination + stats.DroppedMalformed + stats.DroppedQueueFull);
    }

    [Fact]
    public async Task A_frame_to_an_unknown_key_is_dropped_and_counted_and_the_connection_stays()
    {
        await using var host = await RelayTestHost.StartAsync();
        var a = NodePrivateKey.Generate().PublicKey;
        var b = NodePrivateKey.Generate().PublicKey;
        using var clientA = await ConnectAsync(host, a);
        using var clientB = await ConnectAsync(host, b);

        await SendAsync(clientA, NodePrivateKey.Generate().PublicKey, [1, 2, 3]);
        await Await.UntilAsync(() => host.Hub.Statistics.DroppedUnknownDestination == 1, Limit, "the drop being counted");

        // A frame that is only a key (no message) is malformed.
        var keyOnly = new byte[RelayHub.KeyLength];
        b.CopyTo(keyOnly);
        await clientA.SendAsync(keyOnly, WebSocketMessageType.Binary, true, CancellationToken.None);
        await Await.UntilAsync(() => host.Hub.Statistics.DroppedMalformed == 1, Limit, "the malformed frame being counted");

        await SendAsync(clientA, b, [4, 5]);
        var (source, received) = await ReceiveAsync(clientB);
        Assert.Equal(a, source);
        Assert.Equal(new byte[] { 4, 5 }, received);
        Assert.Equal(WebSocketState.Open, clientA.State);
    }

    [Fact]
    public async Task An_oversize_frame_closes_the_connection_with_1009()
    {
        await using var host = await RelayTestHost.StartAsync(o => o.MaxMessageSize = 1024);
        var a = NodePrivateKey.Generate().PublicKey;
        var b = NodePrivateKey.Generate().PublicKey;
        using var clientA = await ConnectAsync(host, a);
        using var clientB = await ConnectAsync(host, b);

        await SendAsync(clientA, b, new byte[1024]); // the limit itself passes
        Assert.Equal(1024, (await ReceiveAsync(clientB)).Message.Length);

        await SendAsync(clientA, b, new byte[1025]);
        var result = await clientA.ReceiveAsync(new byte[2048], CancellationToken.None).WaitAsync(Limit);
        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, clientA.CloseStatus);
        Assert.Equal(1, host.Hub.Statistics.DroppedOversize);
        Assert.Equal(1, host.Hub.Statistics.FramesForwarded);
        await Await.UntilAsync(() => !host.Hub.IsConnected(a), Limit, "the oversize sender leaving the hub");
    }

    [Fact]
    public async Task A_second_connection_with_the_same_key_replaces_the_first()
    {
        await using var host = await RelayTestHost.StartAsync();
        var a = NodePrivateKey.Generate().PublicKey;
        var b = NodePrivateKey.Generate().PublicKey;
        using var first = await ConnectAsync(host, a);
        using var clientB = await ConnectAsync(host, b);
        using var second = await ConnectAsync(host, a, waitForRegistration: false);
        await Await.UntilAsync(() => host.Hub.Statistics.Replaced == 1, Limit, "the replacement");

        var result = await first.ReceiveAsync(new byte[64], CancellationToken.None).WaitAsync(Limit);
        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, first.CloseStatus);

        await SendAsync(clientB, a, [9]);
        var (source, message) = await ReceiveAsync(second);
        Assert.Equal(b, source);
        Assert.Equal(new byte[] { 9 }, message);
        Assert.True(host.Hub.IsConnected(a));
        Assert.Equal(2, host.Hub.ConnectionCount);
    }

    private static async Task<ClientWebSocket> ConnectAsync(RelayTestHost host, NodePublicKey key, bool waitForRegistration = true)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", "Bearer " + host.IssueToken(key));
        await socket.ConnectAsync(host.Url, CancellationToken.None).WaitAsync(Limit);
        if (waitForRegistration)
        {
            await Await.UntilAsync(() => host.Hub.IsConnected(key), Limit, "the hub registering the connection");
        }

        return socket;
    }

    private static Task SendAsync(ClientWebSocket socket, NodePublicKey destination, byte[] message)
    {
        var frame = new byte[RelayHub.KeyLength + message.Length];
        destination.CopyTo(frame);
        message.CopyTo(frame, RelayHub.KeyLength);
        return socket.SendAsync(frame, WebSocketMessageType.Binary, true, CancellationToken.None).WaitAsync(Limit);
    }

    private static async Task<(NodePublicKey Source, byte[] Message)> ReceiveAsync(ClientWebSocket socket)
    {
        var buffer = new byte[RelayHub.KeyLength + 70000];
        int count = 0;
        WebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(new ArraySegment<byte>(buffer, count, buffer.Length - count), CancellationToken.None).WaitAsync(Limit);
            count += result.Count;
        }
        while (!result.EndOfMessage);

        Assert.Equal(WebSocketMessageType.Binary, result.MessageType);
        return (NodePublicKey.FromBytes(buffer.AsSpan(0, RelayHub.KeyLength)), buffer[RelayHub.KeyLength..count]);
    }
}
