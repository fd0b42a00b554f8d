using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using Microsoft.AspNetCore.TestHost;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Api;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Api;

public sealed class MapStreamTests
{
    [Theory]
    [InlineData("memory")]
    [InlineData("sqlite")]
    public async Task Deltas_arrive_after_a_join_a_rename_a_delete_and_an_expiry(string store)
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync(storeKind: store);
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        JoinResponse a = await host.JoinAsync(key.Key, "a");
        await using MapStream map = await host.OpenMapAsync(a.NodeToken);
        await map.WaitUntilAsync(m => m.Messages >= 1, "snapshot");
        Assert.Equal(PeerMapMessageType.Snapshot, map.Received[0].Type);
        Assert.Empty(map.Peers);

        JoinResponse b = await host.JoinAsync(key.Key, "b");
        await map.WaitUntilAsync(m => m.Peers.ContainsKey(b.Self.PublicKey), "b joined");
        Assert.Equal(PeerMapMessageType.Delta, map.Received[^1].Type);
        Assert.Equal("100.64.0.2", map.Peers[b.Self.PublicKey].Addresses[0]);

        Assert.Equal(HttpStatusCode.OK, (await host.Admin.PatchAsJsonAsync($"/api/v1/nodes/{b.Self.Id}", new RenameNodeRequest("bee"), CoordinatorHost.Json)).StatusCode);
        await map.WaitUntilAsync(m => m.Peers[b.Self.PublicKey].Name == "bee", "b renamed");

        JoinResponse c = await host.JoinAsync(key.Key, "c");
        await map.WaitUntilAsync(m => m.Peers.ContainsKey(c.Self.PublicKey), "c joined");

        Assert.Equal(HttpStatusCode.NoContent, (await host.Admin.DeleteAsync($"/api/v1/nodes/{b.Self.Id}")).StatusCode);
        await map.WaitUntilAsync(m => !m.Peers.ContainsKey(b.Self.PublicKey), "b deleted");
        Assert.Contains(b.Self.PublicKey, map.Received[^1].Removed!);

        Assert.Equal(HttpStatusCode.NoContent, (await host.Admin.PostAsync($"/api/v1/nodes/{c.Self.Id}/expire", null)).StatusCode);
        await map.WaitUntilAsync(m => !m.Peers.ContainsKey(c.Self.PublicKey), "c expired");
        Assert.Contains(c.Self.PublicKey, map.Received[^1].Removed!);
        Assert.Empty(map.Peers);
    }

    [Fact]
    public async Task Peers_see_a_node_go_online_and_offline_with_its_stream()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        JoinResponse a = await host.JoinAsync(key.Key, "a");
        JoinResponse b = await host.JoinAsync(key.Key, "b");
        await using MapStream mapA = await host.OpenMapAsync(a.NodeToken);
        await mapA.WaitUntilAsync(m => m.Peers.TryGetValue(b.Self.PublicKey, out MeshNodeInfo? p) && !p.Online, "b offline at first");

        MapStream mapB = await host.OpenMapAsync(b.NodeToken);
        await mapA.WaitUntilAsync(m => m.Peers[b.Self.PublicKey].Online, "b online");
        await mapB.WaitUntilAsync(m => m.Peers.ContainsKey(a.Self.PublicKey) && m.Peers[a.Self.PublicKey].Online, "b sees a online");

        await mapB.DisposeAsync();
        await mapA.WaitUntilAsync(m => !m.Peers[b.Self.PublicKey].Online && m.Peers[b.Self.PublicKey].LastSeen is not null, "b offline after closing");
        Assert.False((await host.Store.GetNodeAsync(b.Self.Id))!.Online);
    }

    [Theory]
    [InlineData("memory")]
    [InlineData("sqlite")]
    public async Task A_deleted_or_expired_node_has_its_stream_closed_and_cannot_open_another(string store)
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync(storeKind: store);
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        JoinResponse a = await host.JoinAsync(key.Key, "a");
        JoinResponse b = await host.JoinAsync(key.Key, "b");
        await using MapStream mapA = await host.OpenMapAsync(a.NodeToken);
        await using MapStream mapB = await host.OpenMapAsync(b.NodeToken);
        await mapA.WaitUntilAsync(m => m.Messages >= 1, "a's snapshot");
        await mapB.WaitUntilAsync(m => m.Messages >= 1, "b's snapshot");

        await host.Admin.DeleteAsync($"/api/v1/nodes/{a.Self.Id}");
        await host.Admin.PostAsync($"/api/v1/nodes/{b.Self.Id}/expire", null);
        foreach ((MapStream map, string reason) in new[] { (mapA, "node deleted"), (mapB, "node expired") })
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (await map.ReceiveAsync(cts.Token) is not null)
            {
            }

            Assert.Equal(WebSocketCloseStatus.PolicyViolation, map.CloseStatus);
            Assert.Equal(reason, map.CloseDescription);
        }

        foreach (string token in new[] { a.NodeToken, b.NodeToken })
        {
            WebSocketClient ws = host.Server.CreateWebSocketClient();
            ws.ConfigureRequest = r => r.Headers.Authorization = "Bearer " + token;
            await Assert.ThrowsAnyAsync<Exception>(() => ws.ConnectAsync(new Uri("ws://localhost/api/v1/map"), CancellationToken.None));
        }
    }

    [Fact]
    public async Task The_map_needs_a_node_token_and_a_websocket()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        JoinResponse a = await host.JoinAsync(key.Key, "a");

        await CoordinatorHost.ProblemAsync(await host.Client.GetAsync("/api/v1/map"), HttpStatusCode.Unauthorized);
        var plain = new HttpRequestMessage(HttpMethod.Get, "/api/v1/map");
        plain.Headers.Authorization = new("Bearer", a.NodeToken);
        Assert.Contains("WebSocket", (await CoordinatorHost.ProblemAsync(await host.Client.SendAsync(plain), HttpStatusCode.BadRequest)).Detail, StringComparison.Ordinal);
        var admin = new HttpRequestMessage(HttpMethod.Get, "/api/v1/map");
        admin.Headers.Authorization = new("Bearer", CoordinatorHost.AdminCredential);
        await CoordinatorHost.ProblemAsync(await host.Client.SendAsync(admin), HttpStatusCode.Unauthorized);

        // The relay's check: the same token, by header or by query parameter.
        var auth = (TunnelMesh.Net.Server.Api.NodeAuthenticator)host.Services.GetService(typeof(TunnelMesh.Net.Server.Api.NodeAuthenticator))!;
        var ctx = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        ctx.Request.QueryString = new("?access_token=" + Uri.EscapeDataString(a.NodeToken));
        Assert.Equal(a.Self.Id, (await auth.AuthenticateAsync(ctx, CancellationToken.None))!.Id);
        ctx.Request.QueryString = new("?access_token=" + Uri.EscapeDataString(a.NodeToken[..^1] + (a.NodeToken[^1] == '0' ? "1" : "0")));
        Assert.Null(await auth.AuthenticateAsync(ctx, CancellationToken.None));
        ctx.Request.Headers.Authorization = "Bearer " + a.NodeToken;
        Assert.Equal(a.Self.Id, (await auth.AuthenticateAsync(ctx, CancellationToken.None))!.Id);
    }

    [Fact]
    public async Task One_change_is_serialized_once_whatever_the_number_of_streams()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        JoinResponse[] nodes = new JoinResponse[5];
        for (int i = 0; i < nodes.Length; i++)
        {
            nodes[i] = await host.JoinAsync(key.Key, $"fan{i}");
        }

        var maps = new List<MapStream>();
        try
        {
            foreach (JoinResponse n in nodes)
            {
                maps.Add(await host.OpenMapAsync(n.NodeToken));
            }

            foreach (MapStream m in maps)
            {
                await m.WaitUntilAsync(x => x.Peers.Count == nodes.Length - 1 && x.Peers.Values.All(p => p.Online), "every peer online");
            }

            var broadcaster = (PeerMapBroadcaster)host.Services.GetService(typeof(PeerMapBroadcaster))!;
            long v0 = await host.Store.GetVersionAsync(CancellationToken.None);
            DateTime deadline = DateTime.UtcNow.AddSeconds(30);
            while ((broadcaster.Current?.Version ?? -1) < v0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }

            Assert.True(broadcaster.Current!.Version >= v0, "the broadcaster did not catch up");
            long published = broadcaster.Current.Version;
            long before = broadcaster.DeltasSerialized;

            Assert.Equal(HttpStatusCode.OK, (await host.Admin.PatchAsJsonAsync($"/api/v1/nodes/{nodes[0].Self.Id}", new RenameNodeRequest("renamed"), CoordinatorHost.Json)).StatusCode);
            foreach (MapStream m in maps.Skip(1))
            {
                await m.WaitUntilAsync(x => x.Peers[nodes[0].Self.PublicKey].Name == "renamed", "the rename");
            }

            // At most one delta per version step, not one per stream (four streams received this one).
            long serialized = broadcaster.DeltasSerialized - before;
            long steps = broadcaster.Current.Version - published;
            Assert.InRange(serialized, 1, steps);
        }
        finally
        {
            foreach (MapStream m in maps)
            {
                await m.DisposeAsync();
            }
        }
    }
}
