using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.EndToEnd;

namespace TunnelMesh.Net.Server.Tests.Node;

/// <summary>MeshNode.WhoIs names the caller of an accepted connection; CreateHttpClient reaches mesh services by name.</summary>
public sealed class WhoIsAndHttpClientTests
{
    /// <summary>A one-request HTTP/1.1 responder on a mesh listener that answers with WhoIs of the caller.</summary>
    private static async Task ServeWhoIsAsync(MeshNode node, MeshTcpListener listener, int requests)
    {
        for (int i = 0; i < requests; i++)
        {
            await using var connection = await listener.AcceptAsync();
            var head = new StringBuilder();
            var buffer = new byte[4096];
            while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                int n = await connection.ReadAsync(buffer);
                if (n == 0)
                {
                    break;
                }

                head.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }

            var who = node.WhoIs(connection);
            string body = who is null ? "unknown" : $"{who.Name}|{who.Fqdn}|{who.PublicKey}|{string.Join(",", who.Tags)}|{who.Addresses[0]}";
            string response = $"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n{body}";
            await connection.WriteAsync(Encoding.UTF8.GetBytes(response));
            await connection.ShutdownSendAsync();
        }
    }

    [Fact]
    public async Task A_node_calls_another_by_name_with_HttpClient_and_WhoIs_names_it_with_its_tags()
    {
        await using var mesh = await KestrelMesh.StartAsync();
        string tagged = (await mesh.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true, Tags: ["tag:billing"]))).Key;
        string plain = await mesh.CreateReusableKeyAsync();
        var server = await mesh.StartNodeAsync("whoami", plain);
        var caller = await mesh.StartNodeAsync("billing", tagged);
        await KestrelMesh.UntilAsync(() => caller.GetStatus().FindPeer("whoami") is not null, "the caller learns whoami");

        await using var listener = await server.ListenAsync(80);
        var serving = ServeWhoIsAsync(server, listener, 2);
        using var http = caller.CreateHttpClient();
        string text = await http.GetStringAsync(new Uri("http://whoami/")).WaitAsync(KestrelMesh.Deadline);
        Assert.Equal($"billing|billing.tunnelmesh|{caller.PublicKey}|tag:billing|{caller.Address}", text);
        Assert.Equal(text, await http.GetStringAsync(new Uri("http://WhoAmI.tunnelmesh/")).WaitAsync(KestrelMesh.Deadline));
        await serving.WaitAsync(KestrelMesh.Deadline);

        var identity = server.WhoIs(caller.Address);
        Assert.NotNull(identity);
        Assert.True(identity.HasTag("billing"));
        Assert.True(identity.HasTag("tag:BILLING"));
        Assert.False(identity.HasTag("admin"));
        Assert.Null(server.WhoIs(IPAddress.Parse("100.127.255.254"))); // no peer owns it

        // An unknown name fails clearly, through HttpClient's usual exception.
        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync(new Uri("http://nosuch/")));
        var socket = Assert.IsType<SocketException>(ex.InnerException);
        Assert.Equal(SocketError.HostNotFound, socket.SocketErrorCode);
        Assert.Contains("nosuch", socket.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_factory_client_with_UseMeshNode_dials_through_the_hosts_keyed_node()
    {
        await using var mesh = await KestrelMesh.StartAsync();
        string key = await mesh.CreateReusableKeyAsync();
        var server = await mesh.StartNodeAsync("reports", key);

        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        var template = mesh.NodeOptions("frontend", key);
        builder.Services.AddMeshNode("edge", o =>
        {
            o.ControlUrl = template.ControlUrl;
            o.AuthKey = template.AuthKey;
            o.Hostname = template.Hostname;
            o.ListenAddress = template.ListenAddress;
        });
        builder.Services.AddHttpClient("reports", c => c.BaseAddress = new Uri("http://reports.tunnelmesh/")).UseMeshNode("edge");
        using var host = builder.Build();
        await host.StartAsync().WaitAsync(KestrelMesh.Deadline);
        var edge = host.Services.GetRequiredKeyedService<MeshNode>("edge");
        await KestrelMesh.UntilAsync(() => edge.GetStatus().FindPeer("reports") is not null, "the hosted node learns reports");

        await using var listener = await server.ListenAsync(80);
        var serving = ServeWhoIsAsync(server, listener, 1);
        var client = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("reports");
        string text = await client.GetStringAsync(new Uri("/x", UriKind.Relative)).WaitAsync(KestrelMesh.Deadline);
        Assert.StartsWith("frontend|frontend.tunnelmesh|" + edge.PublicKey, text, StringComparison.Ordinal);
        await serving.WaitAsync(KestrelMesh.Deadline);
        await host.StopAsync().WaitAsync(KestrelMesh.Deadline);
    }
}
