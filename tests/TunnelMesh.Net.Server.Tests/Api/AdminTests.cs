using System.Net;
using System.Net.Http.Json;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Api;

public sealed class AdminTests
{
    public static TheoryData<string, string> AdminEndpoints => new()
    {
        { "POST", "/api/v1/authkeys" },
        { "GET", "/api/v1/authkeys" },
        { "DELETE", "/api/v1/authkeys/1" },
        { "GET", "/api/v1/nodes" },
        { "GET", "/api/v1/nodes/1" },
        { "PATCH", "/api/v1/nodes/1" },
        { "DELETE", "/api/v1/nodes/1" },
        { "POST", "/api/v1/nodes/1/expire" },
    };

    [Theory]
    [MemberData(nameof(AdminEndpoints))]
    public async Task Admin_endpoints_refuse_without_the_credential(string method, string path)
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        JoinResponse node = await host.JoinAsync(key.Key, "victim");
        Assert.Equal(1, node.Self.Id);

        foreach (string? auth in new[] { null, "Bearer wrong-credential-0123456789", "Bearer " + CoordinatorHost.AdminCredential + "x", "Basic " + CoordinatorHost.AdminCredential, "Bearer " + node.NodeToken })
        {
            var request = new HttpRequestMessage(new HttpMethod(method), path)
            {
                Content = new StringContent("{\"name\":\"renamed\",\"reusable\":true}", Encoding.UTF8, "application/json"),
            };
            if (auth is not null)
            {
                request.Headers.TryAddWithoutValidation("Authorization", auth);
            }

            HttpResponseMessage r = await host.Client.SendAsync(request);
            Assert.Contains("admin credential", (await CoordinatorHost.ProblemAsync(r, HttpStatusCode.Unauthorized)).Detail, StringComparison.Ordinal);
            Assert.Equal("Bearer", r.Headers.WwwAuthenticate.Single().Scheme);
        }

        // Nothing changed.
        Assert.Single(await host.Store.ListAuthKeysAsync());
        Assert.Null((await host.Store.GetAuthKeyAsync(1))!.Revoked);
        MeshNodeInfo after = (await host.Admin.GetFromJsonAsync<MeshNodeInfo>("/api/v1/nodes/1", CoordinatorHost.Json))!;
        Assert.Equal("victim", after.Name);
        Assert.False(after.Expired);
    }

    [Theory]
    [InlineData("memory")]
    [InlineData("sqlite")]
    public async Task Nodes_are_listed_renamed_expired_and_deleted_with_clear_errors(string store)
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync(storeKind: store);
        CreatedAuthKey key = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        JoinResponse a = await host.JoinAsync(key.Key, "a");
        JoinResponse b = await host.JoinAsync(key.Key, "b");

        List<MeshNodeInfo> nodes = (await host.Admin.GetFromJsonAsync<List<MeshNodeInfo>>("/api/v1/nodes", CoordinatorHost.Json))!;
        Assert.Equal(["a", "b"], nodes.Select(n => n.Name));

        HttpResponseMessage taken = await host.Admin.PatchAsJsonAsync($"/api/v1/nodes/{b.Self.Id}", new RenameNodeRequest("a"), CoordinatorHost.Json);
        Assert.Contains("another node", (await CoordinatorHost.ProblemAsync(taken, HttpStatusCode.Conflict)).Detail, StringComparison.Ordinal);
        HttpResponseMessage invalid = await host.Admin.PatchAsJsonAsync($"/api/v1/nodes/{b.Self.Id}", new RenameNodeRequest("Not A Label"), CoordinatorHost.Json);
        Assert.StartsWith("name:", (await CoordinatorHost.ProblemAsync(invalid, HttpStatusCode.BadRequest)).Detail, StringComparison.Ordinal);
        HttpResponseMessage missing = await host.Admin.PatchAsJsonAsync("/api/v1/nodes/99", new RenameNodeRequest("zz"), CoordinatorHost.Json);
        Assert.Contains("No node 99", (await CoordinatorHost.ProblemAsync(missing, HttpStatusCode.NotFound)).Detail, StringComparison.Ordinal);
        HttpResponseMessage renamed = await host.Admin.PatchAsJsonAsync($"/api/v1/nodes/{b.Self.Id}", new RenameNodeRequest("bee"), CoordinatorHost.Json);
        Assert.Equal(HttpStatusCode.OK, renamed.StatusCode);
        Assert.Equal("bee.tunnelmesh", (await renamed.Content.ReadFromJsonAsync<MeshNodeInfo>(CoordinatorHost.Json))!.Fqdn);

        Assert.Equal(HttpStatusCode.NoContent, (await host.Admin.PostAsync($"/api/v1/nodes/{a.Self.Id}/expire", null)).StatusCode);
        Assert.True((await host.Admin.GetFromJsonAsync<MeshNodeInfo>($"/api/v1/nodes/{a.Self.Id}", CoordinatorHost.Json))!.Expired);
        await CoordinatorHost.ProblemAsync(await host.Admin.PostAsync("/api/v1/nodes/99/expire", null), HttpStatusCode.NotFound);

        // An expired node's token no longer works; re-joining by token is refused, by auth key it comes back.
        await CoordinatorHost.ProblemAsync(await JoinTests.PutEndpointsAsync(host, a.NodeToken, []), HttpStatusCode.Unauthorized);
        HttpResponseMessage byToken = await host.PostJoinAsync(new JoinRequest(null, a.Self.PublicKey, "a", NodeToken: a.NodeToken));
        Assert.Contains("expired", (await CoordinatorHost.ProblemAsync(byToken, HttpStatusCode.Forbidden)).Detail, StringComparison.Ordinal);
        JoinResponse revived = await host.JoinAsync(key.Key, "a", a.Self.PublicKey);
        Assert.False(revived.Self.Expired);
        Assert.Equal(a.Self.Addresses, revived.Self.Addresses);

        Assert.Equal(HttpStatusCode.NoContent, (await host.Admin.DeleteAsync($"/api/v1/nodes/{b.Self.Id}")).StatusCode);
        await CoordinatorHost.ProblemAsync(await host.Admin.DeleteAsync($"/api/v1/nodes/{b.Self.Id}"), HttpStatusCode.NotFound);
        await CoordinatorHost.ProblemAsync(await host.Admin.DeleteAsync("/api/v1/authkeys/99"), HttpStatusCode.NotFound);
        Assert.Single((await host.Admin.GetFromJsonAsync<List<MeshNodeInfo>>("/api/v1/nodes", CoordinatorHost.Json))!);
    }

    [Theory]
    [InlineData("{\"expiresInSeconds\":0}", "expiresInSeconds")]
    [InlineData("{\"expiresInSeconds\":-5}", "expiresInSeconds")]
    [InlineData("{\"tags\":[\"web\"]}", "tags")]
    [InlineData("{\"tags\":[\"tag:Not Valid\"]}", "tags")]
    public async Task Bad_auth_key_requests_are_400_naming_the_field(string body, string field)
    {
        await using CoordinatorHost host = await CoordinatorHost.StartAsync();
        HttpResponseMessage r = await host.Admin.PostAsync("/api/v1/authkeys", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.StartsWith(field, (await CoordinatorHost.ProblemAsync(r, HttpStatusCode.BadRequest)).Detail, StringComparison.Ordinal);
        Assert.Empty(await host.Store.ListAuthKeysAsync());
    }

    [Fact]
    public async Task An_auth_key_created_without_a_body_gets_the_defaults_and_a_hashed_secret()
    {
        var time = new FakeTimeProvider();
        await using CoordinatorHost host = await CoordinatorHost.StartAsync(o => o.DefaultAuthKeyLifetime = TimeSpan.FromHours(2), time);
        HttpResponseMessage r = await host.Admin.PostAsync("/api/v1/authkeys", null);
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        CreatedAuthKey key = (await r.Content.ReadFromJsonAsync<CreatedAuthKey>(CoordinatorHost.Json))!;
        Assert.False(key.Info.Reusable);
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromHours(2), key.Info.Expires);
        Assert.Matches("^tmkey-1-[0-9a-f]{64}$", key.Key);
        Assert.Equal($"tmkey-{key.Info.Id}-…", key.Info.Prefix);
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(key.Key[^64..])), (await host.Store.GetAuthKeyAsync(1))!.SecretHash);
    }
}
