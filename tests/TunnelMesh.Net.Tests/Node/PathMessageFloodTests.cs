using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.Node;

/// <summary>An authenticated peer that floods path pings gets a bounded number of pongs; the rest are dropped and counted.</summary>
public sealed class PathMessageFloodTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_peer_flooding_pings_gets_at_most_the_pong_budget_per_interval_and_the_rest_are_counted()
    {
        await using var pair = await NodePair.StartAsync();
        await pair.A.PingAsync(NodePair.IpB, Limit); // a session both ways
        await pair.B.PingAsync(NodePair.IpA, Limit);

        var fromA = pair.A.Device.FindPeer(pair.KeyB.PublicKey)!;
        var atB = pair.B.Device.FindPeer(pair.KeyA.PublicKey)!;
        long rx = atB.RxBytes, tx = atB.TxBytes, refused = pair.B.GetStatistics().DropsFor(DropReason.PathProbeRateLimited);
        var ping = new byte[PathControl.Length];
        const int Flood = 400;
        for (int i = 0; i < Flood; i++)
        {
            PathControl.WriteProbe(ping, PathControl.Ping, (ulong)i);
            Assert.True(fromA.SendPathMessage(ping, fromA.Endpoint) > 0);
        }

        // Every ping B received (48 bytes on the wire each) was either answered with a 48-byte pong or refused.
        int perMessage = PathControl.Length + TunnelMesh.Net.Wire.WireGuardSpec.TransportMinSize;
        // Counters read together; stragglers still in the socket buffer may come in later, so the assertions use one snapshot.
        var deadline = DateTime.UtcNow + Limit;
        long received, answered, dropped;
        while (true)
        {
            dropped = pair.B.GetStatistics().DropsFor(DropReason.PathProbeRateLimited) - refused;
            answered = (atB.TxBytes - tx) / perMessage;
            received = (atB.RxBytes - rx) / perMessage;
            if (received == answered + dropped && received >= Flood / 2)
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, $"B received {received} pings, answered {answered}, refused {dropped}");
            await Task.Delay(20);
        }

        int budget = PathTiming.Default.MaxPongsPerInterval;
        Assert.InRange(answered, 1, 2 * budget); // the burst spans at most two 2 s windows
        Assert.True(dropped >= received - (2 * budget), $"{received} pings, {answered} answered, {dropped} refused");
    }
}
