using System.Net;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.Options;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Api;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Tests.Api;

public sealed class PeerMapViewTests
{
    private const int Ids = 8;
    private const long SelfId = 1;

    // One node slot: absent, or present with a record version and an expiry flag.
    private static readonly Gen<(bool Present, int Version, bool Expired)> SlotGen =
        from present in Gen.Frequency((3, Gen.Constant(true)), (1, Gen.Constant(false)))
        from version in Gen.Choose(1, 4)
        from expired in Gen.Frequency((4, Gen.Constant(false)), (1, Gen.Constant(true)))
        select (present, version, expired);

    private static readonly Gen<(bool Present, int Version, bool Expired)[][]> StatesGen =
        Gen.Choose(1, 12).SelectMany(n => Gen.ArrayOf(Gen.ArrayOf(SlotGen, Ids), n));

    [Fact]
    public void Snapshot_then_deltas_rebuild_every_state_for_the_node()
    {
        var settings = new CoordinatorSettings(Options.Create(new MeshCoordinatorOptions { AdminCredential = "x" }));
        Prop.ForAll(StatesGen.ToArbitrary(), states =>
        {
            var view = new PeerMapView(settings, SelfId);
            var client = new Dictionary<string, MeshNodeInfo>(StringComparer.Ordinal);
            for (int step = 0; step < states.Length; step++)
            {
                NodeRecord[] nodes = [.. states[step].Select((s, i) => (s, id: i + 1L)).Where(x => x.s.Present).Select(x => Node(x.id, x.s.Version, x.s.Expired))];
                PeerMapMessage? m = view.Next(new MapState(step + 1, nodes));
                if (step == 0)
                {
                    Assert.NotNull(m);
                    Assert.Equal(PeerMapMessageType.Snapshot, m.Type);
                    foreach (MeshNodeInfo p in m.Peers!)
                    {
                        client[p.PublicKey] = p;
                    }
                }
                else if (m is not null)
                {
                    Assert.Equal(PeerMapMessageType.Delta, m.Type);
                    Assert.True(m.Upserted!.Count + m.Removed!.Count > 0, "an empty delta was sent");
                    foreach (string k in m.Removed!)
                    {
                        Assert.True(client.Remove(k), "removed a key the node never had");
                    }

                    foreach (MeshNodeInfo p in m.Upserted!)
                    {
                        client[p.PublicKey] = p;
                    }
                }

                var expected = nodes.Where(n => n.Id != SelfId && n.Expired is null).ToDictionary(n => n.PublicKey, n => n.Name);
                Assert.Equal(expected.OrderBy(e => e.Key), client.ToDictionary(c => c.Key, c => c.Value.Name).OrderBy(e => e.Key));
            }
        }).QuickCheckThrowOnFailure();
    }

    private static NodeRecord Node(long id, int version, bool expired) => new(
        id,
        $"n{id}-v{version}",
        $"key{id}",
        IPAddress.Parse($"100.64.0.{id}"),
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
