using System.Net;
using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.EndToEnd;

/// <summary>A MeshNode joining the real coordinator (Kestrel, SQLite) with a revoked or an expired auth key fails to start with the reason.</summary>
public sealed class RefusedKeyTests
{
    [Fact]
    public async Task A_revoked_key_and_an_expired_key_fail_StartAsync_with_the_reason()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using KestrelMesh mesh = await KestrelMesh.StartAsync(time: clock);

        CreatedAuthKey revoked = await mesh.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        Assert.Equal(HttpStatusCode.NoContent, (await mesh.Admin.DeleteAsync($"/api/v1/authkeys/{revoked.Info.Id}")).StatusCode);
        CreatedAuthKey expiring = await mesh.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true, ExpiresInSeconds: 60));
        CreatedAuthKey good = await mesh.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true, ExpiresInSeconds: 3600));
        clock.Advance(TimeSpan.FromMinutes(2));

        MeshNode withRevoked = mesh.CreateNode(mesh.NodeOptions("revoked", revoked.Key, mesh.StateDirectory("revoked")));
        var r = await Assert.ThrowsAsync<MeshControlException>(() => withRevoked.StartAsync());
        Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        Assert.Contains("revoked", r.Reason, StringComparison.Ordinal);
        Assert.Contains("revoked", r.Message, StringComparison.Ordinal);
        Assert.False(withRevoked.IsRunning);

        MeshNode withExpired = mesh.CreateNode(mesh.NodeOptions("expired", expiring.Key, mesh.StateDirectory("expired")));
        var e = await Assert.ThrowsAsync<MeshControlException>(() => withExpired.StartAsync());
        Assert.Equal(HttpStatusCode.Forbidden, e.StatusCode);
        Assert.Contains("expired", e.Reason, StringComparison.Ordinal);
        Assert.Contains("expired", e.Message, StringComparison.Ordinal);
        Assert.False(withExpired.IsRunning);

        // Neither refusal left a node behind or a token in its state directory; a valid key still works.
        Assert.False(File.Exists(Path.Combine(mesh.StateDirectory("revoked"), "node.token")));
        Assert.False(File.Exists(Path.Combine(mesh.StateDirectory("expired"), "node.token")));
        Assert.Empty(await mesh.ListNodesAsync());
        MeshNode ok = await mesh.StartNodeAsync("ok", good.Key);
        Assert.Equal("ok", ok.GetStatus().Self.Name);
        Assert.Equal(["ok"], (await mesh.ListNodesAsync()).Select(n => n.Name));
    }
}
