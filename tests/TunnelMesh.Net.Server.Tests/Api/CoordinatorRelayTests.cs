using System.Net;
using System.Net.WebSockets;
using Microsoft.AspNetCore.TestHost;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Api;

public sealed class CoordinatorRelayTests
{
    [Fact]
    public async Task The_coordinators_relay_forwards_between_joined_nodes_and_refuses_other_tokens()
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        JoinResponse a = await host.JoinAsync(key.Key, "a");
        JoinResponse b = await host.JoinAsync(key.Key, "b");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using WebSocket wa = await ConnectAsync(host, a.NodeToken, cts.Token);
        using WebSocket wb = await ConnectAsync(host, b.NodeToken, cts.Token);

        byte[] message = [4, 0, 0, 0, .. Enumerable.Range(0, 60).Select(i => (byte)i)];
        byte[] frame = [.. Convert.FromBase64String(b.Self.PublicKey), .. message];
        var buffer = new byte[4096];

        // The relay registers b's connection asynchronously: send (a bounded number of times) until b hears a frame.
        Task<WebSocketReceiveResult> receive = wb.ReceiveAsync(buffer, cts.Token);
        for (int attempt = 0; attempt < 40 && !receive.IsCompleted; attempt++)
        {
            await wa.SendAsync(frame, WebSocketMessageType.Binary, true, cts.Token);
            await Task.WhenAny(receive, Task.Delay(500, cts.Token));
        }

        byte[] got = buffer[..(await receive).Count];
        Assert.Equal([.. Convert.FromBase64String(a.Self.PublicKey), .. message], got);

        // Not a node token, a replaced token, an expired node: 401.
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync(host, CoordinatorHost.AdminCredential, cts.Token));
        await host.Admin.PostAsync($"/api/v1/nodes/{b.Self.Id}/expire", null);
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync(host, b.NodeToken, cts.Token));
        var plain = new HttpRequestMessage(HttpMethod.Get, "/api/v1/relay");
        plain.Headers.Authorization = new("Bearer", b.NodeToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await host.Client.SendAsync(plain)).StatusCode);
    }

    private static Task<WebSocket> ConnectAsync(CoordinatorHost host, string token, CancellationToken ct)
    {
        WebSocketClient ws = host.Server.CreateWebSocketClient();
        ws.ConfigureRequest = r => r.Headers.Authorization = "Bearer " + token;
        return ws.ConnectAsync(new Uri("ws://localhost/api/v1/relay"), ct);
    }
}
