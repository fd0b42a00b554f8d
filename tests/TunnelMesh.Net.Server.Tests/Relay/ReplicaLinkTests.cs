using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using TunnelMesh.Net.Server.Relay;

namespace TunnelMesh.Net.Server.Tests.Relay;

public sealed class ReplicaLinkTests
{
    [Fact]
    public async Task A_flood_to_a_replica_that_does_not_take_frames_fills_the_bounded_queue_and_the_rest_is_dropped_and_counted()
    {
        // The other "replica" accepts TCP connections and never answers the WebSocket upgrade, so
        // nothing leaves the queue: exactly its capacity is kept.
        using var stalled = new TcpListener(IPAddress.Loopback, 0);
        stalled.Start();
        var accepted = new List<Socket>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        Task accepting = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    accepted.Add(await stalled.AcceptSocketAsync(stop.Token));
                }
            }
            catch (OperationCanceledException)
            {
            }
        });

        const int Capacity = 16, Flood = 10_000;
        using var metrics = new ReplicaRelayMetrics();
        var url = new Uri($"ws://127.0.0.1:{((IPEndPoint)stalled.LocalEndpoint).Port}/api/v1/relay/replica");
        await using (var link = new ReplicaLink("other", url, "self", "secret", Capacity, TimeSpan.FromSeconds(15), metrics, NullLogger.Instance))
        {
            link.Start();
            RelayKey destination = RelayKey.Read(RandomNumberGenerator.GetBytes(32)), source = RelayKey.Read(RandomNumberGenerator.GetBytes(32));
            byte[] message = RandomNumberGenerator.GetBytes(1400);
            int queued = 0;
            for (int i = 0; i < Flood; i++)
            {
                queued += link.TryEnqueue(destination, source, message) ? 1 : 0;
            }

            Assert.Equal(Capacity, queued);
            Assert.Equal(Capacity, link.Queued);
            Assert.False(link.Connected);
            ReplicaRelayStatistics s = metrics.Statistics;
            Assert.Equal(Capacity, s.Forwarded);
            Assert.Equal(Capacity * 1400L, s.ForwardedBytes);
            Assert.Equal(Flood - Capacity, s.DroppedQueueFull);
        }

        await stop.CancelAsync();
        await accepting;
        stalled.Stop();
        foreach (Socket s in accepted)
        {
            s.Dispose();
        }
    }

    [Theory]
    [InlineData("http://10.0.0.2:8080", "/api/v1/relay/replica", "ws://10.0.0.2:8080/api/v1/relay/replica")]
    [InlineData("https://coord.example/", "/api/v1/relay/replica", "wss://coord.example/api/v1/relay/replica")]
    [InlineData("https://coord.example/mesh/", "/api/v2/relay/replica", "wss://coord.example/mesh/api/v2/relay/replica")]
    [InlineData("ws://192.0.2.7", "/x/relay/replica", "ws://192.0.2.7/x/relay/replica")]
    public void The_link_url_is_the_replica_url_with_the_endpoints_path_over_websocket(string replicaUrl, string path, string expected) =>
        Assert.Equal(new Uri(expected), ReplicaRelay.LinkUrl(new Uri(replicaUrl), path));
}
