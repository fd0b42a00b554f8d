using System.Diagnostics.Metrics;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Tests.Node;

public sealed class MetricsTests
{
    [Fact]
    public async Task Drops_and_peer_counters_are_published_on_the_TunnelMesh_meter()
    {
        await using var pair = await NodePair.StartAsync();
        await pair.A.PingAsync(NodePair.IpB, TimeSpan.FromSeconds(10));
        pair.B.Drops.Increment(DropReason.InvalidMac1);
        string nodeB = pair.B.PublicKey.ToString();

        var seen = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == MeshNode.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var t = tags.ToArray().ToDictionary(k => k.Key, k => k.Value?.ToString());
            if (t.GetValueOrDefault("node") == nodeB)
            {
                string key = instrument.Name + (t.TryGetValue("reason", out var r) ? "/" + r : "");
                seen[key] = value;
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();

        Assert.Equal(1, seen["tunnelmesh.drops/InvalidMac1"]);
        Assert.Equal(1, seen["tunnelmesh.peer.handshakes"]);
        Assert.True(seen["tunnelmesh.peer.received"] > 0);
        Assert.True(seen["tunnelmesh.peer.sent"] > 0);

        // The packet pool: posted receives alone take buffers, and every buffer not in use is pooled.
        Assert.True(seen["tunnelmesh.buffers.allocated"] > 0);
        Assert.InRange(seen["tunnelmesh.buffers.pooled"], 0, seen["tunnelmesh.buffers.allocated"] - 1);
    }
}
