using System.Net;
using System.Net.Http.Json;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Api;

public sealed class ReplicaTests
{
    [Fact]
    public async Task A_change_made_through_one_coordinator_reaches_streams_held_by_another_on_the_same_store()
    {
        var store = new MemoryMeshStore();
        await using CoordinatorHost one = await CoordinatorHost.StartAsync(store: store);
        await using CoordinatorHost two = await CoordinatorHost.StartAsync(store: store);
        CreatedAuthKey key = await one.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        JoinResponse a = await one.JoinAsync(key.Key, "a");
        await using MapStream onTwo = await two.OpenMapAsync(a.NodeToken);
        await onTwo.WaitUntilAsync(m => m.Messages >= 1, "snapshot");

        JoinResponse b = await one.JoinAsync(key.Key, "b");
        await onTwo.WaitUntilAsync(m => m.Peers.ContainsKey(b.Self.PublicKey), "b, joined through the other coordinator");
        Assert.Equal(HttpStatusCode.OK, (await one.Admin.PatchAsJsonAsync($"/api/v1/nodes/{b.Self.Id}", new RenameNodeRequest("bee"), CoordinatorHost.Json)).StatusCode);
        await onTwo.WaitUntilAsync(m => m.Peers[b.Self.PublicKey].Name == "bee", "the rename");
    }
}
