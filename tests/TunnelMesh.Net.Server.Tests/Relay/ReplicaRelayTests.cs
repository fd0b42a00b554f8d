using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Security.Cryptography;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Relay;
using TunnelMesh.Net.Server.Tests.Stores;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Relay;

/// <summary>The replica link and the routing between replicas, written as the attacker and with raw relay clients.</summary>
public sealed class ReplicaRelayTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    [PostgresFact]
    public async Task A_replica_link_without_the_cluster_secret_is_refused_and_counted_and_a_node_token_does_not_open_it()
    {
        await using ReplicaCluster cluster = await ReplicaCluster.StartAsync(1);
        ReplicaCluster.Replica replica = cluster.Replicas[0];
        JoinResponse node = await replica.JoinAsync(await replica.CreateReusableKeyAsync(), "n");
        using var cts = new CancellationTokenSource(Limit);
        long before = replica.Metrics.Statistics.Refused;

        foreach (string? bearer in new[] { null, "wrong-secret-of-the-same-length-as-the-real-one-000", node.NodeToken, CoordinatorHost.AdminCredential })
        {
            using var ws = new ClientWebSocket();
            if (bearer is not null)
            {
                ws.Options.SetRequestHeader("Authorization", "Bearer " + bearer);
            }

            ws.Options.CollectHttpResponseDetails = true;
            await Assert.ThrowsAsync<WebSocketException>(() => ws.ConnectAsync(replica.LinkUrl, cts.Token));
            Assert.Equal(HttpStatusCode.Unauthorized, ws.HttpStatusCode);
        }

        // A plain request (no upgrade) with the node token: 401 too, before anything else is looked at.
        var plain = new HttpRequestMessage(HttpMethod.Get, "/api/v1/relay/replica");
        plain.Headers.Authorization = new AuthenticationHeaderValue("Bearer", node.NodeToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await replica.Client.SendAsync(plain, cts.Token)).StatusCode);
        Assert.Equal(before + 5, replica.Metrics.Statistics.Refused);

        // The cluster secret is no node token: the node relay refuses it.
        long hubRefused = replica.Hub.Statistics.Refused;
        await Assert.ThrowsAsync<WebSocketException>(() => replica.ConnectRelayAsync(ReplicaCluster.Secret, cts.Token));
        Assert.Equal(hubRefused + 1, replica.Hub.Statistics.Refused);

        // With the secret the link opens.
        using ClientWebSocket link = await replica.ConnectLinkAsync(ReplicaCluster.Secret, cts.Token);
        Assert.Equal(WebSocketState.Open, link.State);
        Assert.Equal(before + 5, replica.Metrics.Statistics.Refused);
    }

    [PostgresFact]
    public async Task Frames_on_a_replica_link_go_only_to_nodes_attached_there_and_the_rest_are_dropped_and_counted()
    {
        await using ReplicaCluster cluster = await ReplicaCluster.StartAsync(1);
        ReplicaCluster.Replica replica = cluster.Replicas[0];
        JoinResponse node = await replica.JoinAsync(await replica.CreateReusableKeyAsync(), "n");
        using var cts = new CancellationTokenSource(Limit);
        using ClientWebSocket client = await replica.ConnectRelayAsync(node.NodeToken, cts.Token);
        await Await.UntilAsync(() => replica.Hub.IsConnected(NodePublicKey.Parse(node.Self.PublicKey)), Limit, "the node on the relay");
        using ClientWebSocket link = await replica.ConnectLinkAsync(ReplicaCluster.Secret, cts.Token);

        byte[] source = RandomNumberGenerator.GetBytes(32);
        byte[] message = [4, 0, 0, 0, .. RandomNumberGenerator.GetBytes(60)];

        // To a key attached nowhere: dropped and counted, not sent on.
        await link.SendAsync((byte[])[.. RandomNumberGenerator.GetBytes(32), .. source, .. message], WebSocketMessageType.Binary, true, cts.Token);
        await Await.UntilAsync(() => replica.Metrics.Statistics.DroppedUnknownDestination == 1, Limit, "the unknown destination counted");

        // Too short to carry two keys and a message: malformed.
        await link.SendAsync(new byte[64], WebSocketMessageType.Binary, true, cts.Token);
        await Await.UntilAsync(() => replica.Metrics.Statistics.DroppedMalformed == 1, Limit, "the malformed frame counted");

        // To the attached node: it gets the source key the link named, then the message.
        await link.SendAsync((byte[])[.. Convert.FromBase64String(node.Self.PublicKey), .. source, .. message], WebSocketMessageType.Binary, true, cts.Token);
        byte[] got = await ReceiveAsync(client, cts.Token);
        Assert.Equal([.. source, .. message], got);
        Assert.Equal(1, replica.Metrics.Statistics.Received);
        Assert.Equal(0, replica.Metrics.Statistics.Forwarded); // nothing was sent on to another replica
    }

    [PostgresFact]
    public async Task Frames_follow_a_node_that_moves_to_another_replica()
    {
        await using ReplicaCluster cluster = await ReplicaCluster.StartAsync(2);
        ReplicaCluster.Replica one = cluster.Replicas[0], two = cluster.Replicas[1];
        string key = await one.CreateReusableKeyAsync();
        JoinResponse x = await one.JoinAsync(key, "x"), y = await one.JoinAsync(key, "y"), z = await two.JoinAsync(key, "z");
        await cluster.LinkedAsync();
        using var cts = new CancellationTokenSource(Limit);

        // x on replica 2, y on replica 1, z on replica 2.
        ClientWebSocket xSocket = await two.ConnectRelayAsync(x.NodeToken, cts.Token);
        using ClientWebSocket ySocket = await one.ConnectRelayAsync(y.NodeToken, cts.Token);
        using ClientWebSocket zSocket = await two.ConnectRelayAsync(z.NodeToken, cts.Token);
        var xFrames = new FrameReader(xSocket, cts.Token);

        // y (replica 1) to x (replica 2): across the link, once replica 1 has read where x is.
        await SendUntilReceivedAsync(ySocket, xFrames, y, x, cts.Token);
        Assert.True(one.Metrics.Statistics.Forwarded > 0);
        Assert.True(two.Metrics.Statistics.Received > 0);

        // x moves to replica 1.
        var xKey = NodePublicKey.Parse(x.Self.PublicKey);
        await xSocket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token);
        await Await.UntilAsync(() => !two.Hub.IsConnected(xKey), Limit, "x gone from replica 2");
        xSocket.Dispose();
        using ClientWebSocket xAgain = await one.ConnectRelayAsync(x.NodeToken, cts.Token);
        var xFramesAgain = new FrameReader(xAgain, cts.Token);
        await Await.UntilAsync(() => one.Hub.IsConnected(xKey), Limit, "x on replica 1");

        // y to x is now local on replica 1; z (replica 2) to x follows x across the link to replica 1.
        await SendUntilReceivedAsync(ySocket, xFramesAgain, y, x, cts.Token);
        long fromTwo = two.Metrics.Statistics.Forwarded;
        await SendUntilReceivedAsync(zSocket, xFramesAgain, z, x, cts.Token);
        Assert.True(two.Metrics.Statistics.Forwarded > fromTwo, "z's frames crossed from replica 2");
        Assert.Equal(one.Relay.Id, two.Relay.Routes.AttachedTo(RelayKey.From(xKey)));
        Assert.Equal(one.Relay.Id, one.Relay.Routes.AttachedTo(RelayKey.From(xKey)));
    }

    [PostgresFact]
    public async Task A_frame_from_a_node_to_a_key_attached_nowhere_is_dropped_and_counted()
    {
        await using ReplicaCluster cluster = await ReplicaCluster.StartAsync(2);
        ReplicaCluster.Replica one = cluster.Replicas[0], two = cluster.Replicas[1];
        JoinResponse y = await one.JoinAsync(await one.CreateReusableKeyAsync(), "y");
        await cluster.LinkedAsync();
        using var cts = new CancellationTokenSource(Limit);
        using ClientWebSocket ySocket = await one.ConnectRelayAsync(y.NodeToken, cts.Token);
        await Await.UntilAsync(() => one.Hub.IsConnected(NodePublicKey.Parse(y.Self.PublicKey)), Limit, "y on the relay");

        long before = one.Hub.Statistics.DroppedUnknownDestination;
        await ySocket.SendAsync((byte[])[.. RandomNumberGenerator.GetBytes(32), 4, 0, 0, 0, 1, 2, 3], WebSocketMessageType.Binary, true, cts.Token);
        await Await.UntilAsync(() => one.Hub.Statistics.DroppedUnknownDestination == before + 1, Limit, "the unknown destination counted");
        Assert.Equal(0, one.Metrics.Statistics.Forwarded);
        Assert.Equal(0, two.Metrics.Statistics.Received + two.Metrics.Statistics.DroppedUnknownDestination);
    }

    // Sends a fresh message from one raw relay client to another (a bounded number of times, while the
    // routes settle) until the receiver's reader sees it; copies of earlier messages are skipped.
    private static async Task SendUntilReceivedAsync(ClientWebSocket from, FrameReader to, JoinResponse sender, JoinResponse receiver, CancellationToken cancellationToken)
    {
        byte[] message = [4, 0, 0, 0, .. RandomNumberGenerator.GetBytes(60)];
        byte[] frame = [.. Convert.FromBase64String(receiver.Self.PublicKey), .. message];
        byte[] expected = [.. Convert.FromBase64String(sender.Self.PublicKey), .. message];
        Task<bool> seen = to.WaitForAsync(expected, cancellationToken);
        for (int attempt = 0; attempt < 100 && !seen.IsCompleted; attempt++)
        {
            await from.SendAsync(frame, WebSocketMessageType.Binary, true, cancellationToken);
            await Task.WhenAny(seen, Task.Delay(200, cancellationToken));
        }

        Assert.True(await seen, "the frame arrived");
    }

    /// <summary>Reads every frame a raw relay client gets, in the background.</summary>
    private sealed class FrameReader
    {
        private readonly System.Threading.Channels.Channel<byte[]> _frames = System.Threading.Channels.Channel.CreateUnbounded<byte[]>();
        private readonly Task _reading;

        public FrameReader(ClientWebSocket socket, CancellationToken cancellationToken) => _reading = ReadAsync(socket, cancellationToken);

        private async Task ReadAsync(ClientWebSocket socket, CancellationToken cancellationToken)
        {
            try
            {
                while (socket.State == WebSocketState.Open)
                {
                    _frames.Writer.TryWrite(await ReceiveAsync(socket, cancellationToken));
                }
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
            {
            }
            finally
            {
                _frames.Writer.TryComplete();
            }
        }

        /// <summary>True once a frame equal to <paramref name="expected"/> came (others are skipped); false if the socket ended first.</summary>
        public async Task<bool> WaitForAsync(byte[] expected, CancellationToken cancellationToken)
        {
            await foreach (byte[] frame in _frames.Reader.ReadAllAsync(cancellationToken))
            {
                if (frame.AsSpan().SequenceEqual(expected))
                {
                    return true;
                }
            }

            return false;
        }
    }

    private static async Task<byte[]> ReceiveAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[4096];
        int count = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(buffer.AsMemory(count), cancellationToken);
            count += result.Count;
        }
        while (!result.EndOfMessage);
        return buffer[..count];
    }
}
