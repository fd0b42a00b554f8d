using System.Net;
using System.Net.Http.Json;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Api;

public sealed class ConcurrentJoinTests
{
    private const int Nodes = 500;
    private const int Watchers = 10;

    [Theory]
    [InlineData("memory")]
    [InlineData("sqlite")]
    public async Task Five_hundred_concurrent_joins_get_unique_addresses_and_every_map_stream_converges(string store)
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync(storeKind: store);
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));

        // A few nodes join first and watch the rest arrive over their map streams (deltas).
        var watchers = new List<(JoinResponse Join, MapStream Map)>();
        for (int i = 0; i < Watchers; i++)
        {
            JoinResponse j = await host.JoinAsync(key.Key, "node");
            watchers.Add((j, await host.OpenMapAsync(j.NodeToken)));
        }

        using var gate = new SemaphoreSlim(32);
        Task<JoinResponse>[] joins = [.. Enumerable.Range(0, Nodes - Watchers).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                HttpResponseMessage r = await host.PostJoinAsync(new JoinRequest(key.Key, CoordinatorHost.NewNodeKey(), "node", [$"192.0.2.{i % 250 + 1}:{1000 + i}"]));
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                return (await r.Content.ReadFromJsonAsync<JoinResponse>(CoordinatorHost.Json))!;
            }
            finally
            {
                gate.Release();
            }
        })];
        JoinResponse[] all = [.. watchers.Select(w => w.Join), .. await Task.WhenAll(joins).WaitAsync(TimeSpan.FromMinutes(5))];

        Assert.Equal(Nodes, all.Select(j => j.Self.Addresses[0]).Distinct().Count());
        Assert.Equal(Nodes, all.Select(j => j.Self.Addresses[1]).Distinct().Count());
        Assert.Equal(Nodes, all.Select(j => j.Self.Name).Distinct().Count());
        Assert.Equal(Nodes, all.Select(j => j.Self.Id).Distinct().Count());

        // Lowest free addresses: exactly the first 500 of the prefix.
        var expected = Enumerable.Range(1, Nodes).Select(i => $"100.64.{i / 256}.{i % 256}").ToHashSet();
        Assert.True(expected.SetEquals(all.Select(j => j.Self.Addresses[0])));

        string[] allKeys = [.. all.Select(j => j.Self.PublicKey).Order()];
        foreach ((JoinResponse join, MapStream map) in watchers)
        {
            await map.WaitUntilAsync(m => m.Peers.Count == Nodes - 1, $"{join.Self.Name} sees all {Nodes - 1} peers", TimeSpan.FromMinutes(2));
            Assert.Equal(allKeys.Where(k => k != join.Self.PublicKey), map.Peers.Keys.Order());
        }

        // Every other node opens its map stream too (a snapshot each): all 500 maps converge.
        var streams = watchers.Select(w => (w.Join, w.Map)).ToList();
        try
        {
            foreach (JoinResponse join in all.Skip(Watchers))
            {
                streams.Add((join, await host.OpenMapAsync(join.NodeToken)));
            }

            foreach ((JoinResponse join, MapStream map) in streams)
            {
                await map.WaitUntilAsync(m => m.Peers.Count == Nodes - 1, $"{join.Self.Name} sees all {Nodes - 1} peers", TimeSpan.FromMinutes(2));
                Assert.Equal(allKeys.Where(k => k != join.Self.PublicKey), map.Peers.Keys.Order());
            }

            // One more change (an admin rename) reaches every one of the 500 streams.
            JoinResponse renamed = all[Nodes / 2];
            using HttpResponseMessage patch = await host.Admin.PatchAsJsonAsync($"/api/v1/nodes/{renamed.Self.Id}", new RenameNodeRequest("renamed-node"), CoordinatorHost.Json);
            Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
            foreach ((JoinResponse join, MapStream map) in streams.Where(s => s.Join.Self.Id != renamed.Self.Id))
            {
                await map.WaitUntilAsync(m => m.Peers[renamed.Self.PublicKey].Name == "renamed-node", $"{join.Self.Name} sees the rename", TimeSpan.FromMinutes(1));
            }
        }
        finally
        {
            foreach ((_, MapStream map) in streams)
            {
                await map.DisposeAsync();
            }
        }
    }
}
