using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Microsoft.Extensions.Options;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Api;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Tests.Api;

public sealed class PeerMapViewTests
{
    private const int Ids = 8;
    private const long SelfId = 1;

    private static readonly CoordinatorSettings Settings = new(Options.Create(new MeshCoordinatorOptions { AdminCredential = "x" }));

    // One node slot: absent, or present with a record version and an expiry flag.
    private static readonly Gen<(bool Present, int Version, bool Expired)> SlotGen =
        from present in Gen.Frequency((3, Gen.Constant(true)), (1, Gen.Constant(false)))
        from version in Gen.Choose(1, 4)
        from expired in Gen.Frequency((4, Gen.Constant(false)), (1, Gen.Constant(true)))
        select (present, version, expired);

    // The receiving node: nearly always there (its record changes too), rarely deleted or expired.
    private static readonly Gen<(bool Present, int Version, bool Expired)> SelfGen =
        from present in Gen.Frequency((30, Gen.Constant(true)), (1, Gen.Constant(false)))
        from version in Gen.Choose(1, 3)
        from expired in Gen.Frequency((30, Gen.Constant(false)), (1, Gen.Constant(true)))
        select (present, version, expired);

    // One step: the node list, whether the stream gets this update (false: its queue dropped it),
    // and how many updates ahead the newest published one is when the stream handles it.
    private static readonly Gen<((bool Present, int Version, bool Expired)[] Slots, bool Delivered, int Ahead)> StepGen =
        from self in SelfGen
        from others in Gen.ArrayOf(SlotGen, Ids - 1)
        from delivered in Gen.Frequency((4, Gen.Constant(true)), (1, Gen.Constant(false)))
        from ahead in Gen.Frequency((5, Gen.Constant(0)), (1, Gen.Choose(1, 3)))
        select (new[] { self }.Concat(others).ToArray(), delivered, ahead);

    private static readonly Gen<((bool Present, int Version, bool Expired)[] Slots, bool Delivered, int Ahead)[]> StepsGen =
        Gen.Choose(1, 12).SelectMany(n => Gen.ArrayOf(StepGen, n));

    [Property]
    public Property Snapshot_then_deltas_rebuild_every_state_for_the_node_also_when_it_misses_updates()
    {
        return Prop.ForAll(StepsGen.ToArbitrary(), Gen.Choose(1, 4).ToArbitrary(), (steps, floor) =>
        {
            var builder = new MapUpdateBuilder(Settings);
            NodeRecord[][] states = [.. steps.Select(s => Nodes(s.Slots))];
            MapUpdate[] updates = [.. states.Select((nodes, i) => builder.Next(i + 1, nodes))];
            var view = new PeerMapView(SelfId, floor);
            var client = new Dictionary<string, MeshNodeInfo>(StringComparer.Ordinal);
            long clientVersion = -1;
            for (int i = 0; i < updates.Length; i++)
            {
                if (!steps[i].Delivered)
                {
                    continue;
                }

                int latest = Math.Min(updates.Length - 1, i + steps[i].Ahead);
                bool skipped = updates[i].Version <= view.SentVersion || (!view.SnapshotSent && updates[i].Version < floor);
                int brought = view.SnapshotSent && updates[i].PreviousVersion == view.SentVersion ? i : latest;
                NodeRecord? self = states[brought].FirstOrDefault(n => n.Id == SelfId);
                MapStep step = view.Next(updates[i], updates[latest]);
                if (step.CloseReason is not null)
                {
                    // Closed only when the node is gone from the state it would have been brought to.
                    Assert.False(skipped, "closed on an update it should have skipped");
                    Assert.True(self is null || self.Expired is not null, "closed although the node is there");
                    Assert.Equal(self is null ? "node deleted" : "node expired", step.CloseReason);
                    return;
                }

                Assert.True(skipped || (self is not null && self.Expired is null), "a deleted or expired node's stream stayed open");
                if (step.Message.IsEmpty)
                {
                    continue;
                }

                PeerMapMessage m = JsonSerializer.Deserialize<PeerMapMessage>(step.Message.Span, ApiJson.Options)!;
                Assert.True(m.Version > clientVersion, "versions must grow");
                Assert.True(clientVersion >= 0 || m.Type == PeerMapMessageType.Snapshot, "a delta came before the snapshot");
                Assert.True(m.Version >= floor, "a message older than the stream");
                Assert.Equal(m.Type == PeerMapMessageType.Snapshot, step.IsSnapshot);
                if (m.Type == PeerMapMessageType.Snapshot)
                {
                    client.Clear();
                    foreach (MeshNodeInfo p in m.Peers!)
                    {
                        client[p.PublicKey] = p;
                    }
                }
                else
                {
                    Assert.True(m.Upserted!.Count + m.Removed!.Count > 0, "an empty delta was sent");
                    Assert.DoesNotContain(m.Upserted!, p => p.Id == SelfId);
                    foreach (string k in m.Removed!)
                    {
                        Assert.True(client.Remove(k), "removed a key the node never had");
                    }

                    foreach (MeshNodeInfo p in m.Upserted!)
                    {
                        client[p.PublicKey] = p;
                    }
                }

                clientVersion = m.Version;
                Assert.Equal(m.Version, view.SentVersion);
                NodeRecord[] at = states[m.Version - 1];
                var expected = at.Where(n => n.Id != SelfId && n.Expired is null).ToDictionary(n => n.PublicKey, n => n.Name);
                Assert.Equal(expected.OrderBy(e => e.Key), client.ToDictionary(c => c.Key, c => c.Value.Name).OrderBy(e => e.Key));
            }
        });
    }

    [Fact]
    public void A_stream_that_falls_behind_its_queue_gets_a_fresh_snapshot_then_deltas_again()
    {
        var builder = new MapUpdateBuilder(Settings);
        using var subscription = new MapSubscription(null);
        var view = new PeerMapView(SelfId, 1);
        MapUpdate first = builder.Next(1, [Node(1, 1, false), Node(2, 1, false)]);
        MapStep snapshot = view.Next(first, first);
        Assert.True(snapshot.IsSnapshot);

        // The stream stalls while more updates than its queue holds are published: the oldest are dropped.
        MapUpdate last = first;
        for (int v = 2; v <= MapSubscription.Capacity + 3; v++)
        {
            last = builder.Next(v, [Node(1, 1, false), Node(2, v, false), Node(v + 1, 1, false)]);
            subscription.Offer(last);
        }

        Assert.True(subscription.Updates.TryRead(out MapUpdate? next));
        Assert.NotEqual(view.SentVersion, next.PreviousVersion);
        MapStep resync = view.Next(next, last);
        Assert.True(resync.IsSnapshot);
        Assert.Equal(1, view.Resyncs);
        PeerMapMessage m = JsonSerializer.Deserialize<PeerMapMessage>(resync.Message.Span, ApiJson.Options)!;
        Assert.Equal(last.Version, m.Version);
        Assert.Equal(["key2", $"key{last.Version + 1}"], m.Peers!.Select(p => p.PublicKey));

        // The rest of the queue is older than that snapshot: nothing to send.
        while (subscription.Updates.TryRead(out MapUpdate? stale))
        {
            Assert.True(view.Next(stale, last).Message.IsEmpty);
        }

        // The next change is a delta again.
        MapUpdate after = builder.Next(last.Version + 1, [Node(1, 1, false), Node(2, 99, false)]);
        MapStep delta = view.Next(after, after);
        Assert.False(delta.IsSnapshot);
        PeerMapMessage d = JsonSerializer.Deserialize<PeerMapMessage>(delta.Message.Span, ApiJson.Options)!;
        Assert.Equal(PeerMapMessageType.Delta, d.Type);
        Assert.Equal(["key2"], d.Upserted!.Select(p => p.PublicKey));
        Assert.Equal([$"key{last.Version + 1}"], d.Removed!);
    }

    [Fact]
    public void One_change_is_serialized_once_and_every_stream_sends_the_same_bytes()
    {
        const int N = 500;
        var builder = new MapUpdateBuilder(Settings);
        NodeRecord[] nodes = [.. Enumerable.Range(1, N).Select(i => Node(i, 1, false))];
        MapUpdate first = builder.Next(1, nodes);
        Assert.Equal(N, builder.NodesSerialized);
        Assert.Equal(0, builder.DeltasSerialized);

        NodeRecord[] changed = [.. nodes];
        changed[41] = Node(42, 2, false);
        MapUpdate update = builder.Next(2, changed);
        Assert.Equal(N + 1, builder.NodesSerialized);
        Assert.Equal(1, builder.DeltasSerialized);
        Assert.Equal(first.Version, update.PreviousVersion);
        Assert.Equal(1, update.DeltaEntries);

        byte[]? shared = null;
        for (long id = 1; id <= N; id++)
        {
            ReadOnlyMemory<byte> bytes = update.DeltaFor(id);
            if (id == 42)
            {
                Assert.True(bytes.IsEmpty, "the only change is the node itself: nothing to send it");
                continue;
            }

            Assert.True(MemoryMarshal.TryGetArray(bytes, out ArraySegment<byte> segment));
            shared ??= segment.Array;
            Assert.Same(shared, segment.Array);
        }

        Assert.Equal(N + 1, builder.NodesSerialized);
        Assert.Equal(1, builder.DeltasSerialized);

        // Snapshots are built once per update too.
        ReadOnlyMemory<byte> s1 = update.SnapshotFor(1);
        ReadOnlyMemory<byte> s2 = update.SnapshotFor(2);
        Assert.Equal(N - 1, JsonSerializer.Deserialize<PeerMapMessage>(s1.Span, ApiJson.Options)!.Peers!.Count);
        Assert.DoesNotContain(JsonSerializer.Deserialize<PeerMapMessage>(s2.Span, ApiJson.Options)!.Peers!, p => p.Id == 2);
        Assert.Equal(N + 1, builder.NodesSerialized);
    }

    [Fact]
    public void The_bytes_are_what_the_serializer_writes_for_the_same_message()
    {
        var builder = new MapUpdateBuilder(Settings);
        NodeRecord a = Node(1, 1, false) with { PublicKey = "a+/=<>&'\"é" };
        NodeRecord b = Node(2, 1, false);
        NodeRecord c = Node(3, 1, false) with { PublicKey = "c+key/=" };
        builder.Next(1, [a, b, c]);
        MapUpdate u = builder.Next(2, [a with { Version = 2 }, b with { Version = 2 }]);

        byte[] expectedDelta = JsonSerializer.SerializeToUtf8Bytes(
            new PeerMapMessage(PeerMapMessageType.Delta, 2, Upserted: [Settings.ToInfo(a with { Version = 2 }), Settings.ToInfo(b with { Version = 2 })], Removed: [c.PublicKey]),
            ApiJson.Options);
        Assert.Equal(expectedDelta, u.DeltaFor(99).ToArray());
        byte[] withoutA = JsonSerializer.SerializeToUtf8Bytes(
            new PeerMapMessage(PeerMapMessageType.Delta, 2, Upserted: [Settings.ToInfo(b with { Version = 2 })], Removed: [c.PublicKey]),
            ApiJson.Options);
        Assert.Equal(withoutA, u.DeltaFor(1).ToArray());

        foreach (long self in new long[] { 1, 2, 99 })
        {
            byte[] expected = JsonSerializer.SerializeToUtf8Bytes(Settings.Snapshot(2, u.Nodes, self), ApiJson.Options);
            Assert.Equal(expected, u.SnapshotFor(self).ToArray());
        }
    }

    private static NodeRecord[] Nodes((bool Present, int Version, bool Expired)[] slots) =>
        [.. slots.Select((s, i) => (s, id: i + 1L)).Where(x => x.s.Present).Select(x => Node(x.id, x.s.Version, x.s.Expired))];

    private static NodeRecord Node(long id, int version, bool expired) => new(
        id,
        $"n{id}-v{version}",
        $"key{id}",
        IPAddress.Parse($"100.64.{id / 256}.{id % 256}"),
        IPAddress.Parse($"fd74:6d65:7368::6440:{id}"),
        [],
        [],
        false,
        1,
        [],
        DateTimeOffset.UnixEpoch,
        null,
        false,
        expired ? DateTimeOffset.UnixEpoch : null,
        version);
}
