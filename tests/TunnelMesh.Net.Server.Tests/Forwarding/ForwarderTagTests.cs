using System.Net;
using System.Net.Sockets;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Forwarding;
using TunnelMesh.Net.Server.Tests.EndToEnd;

namespace TunnelMesh.Net.Server.Tests.Forwarding;

/// <summary>A forward with AllowedTags admits peers whose auth key carried the tag and resets the others.</summary>
public sealed class ForwarderTagTests
{
    [Fact]
    public async Task Only_peers_with_an_allowed_tag_reach_the_forwarded_service()
    {
        await using var mesh = await KestrelMesh.StartAsync();
        string ops = (await mesh.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true, Tags: ["tag:ops"]))).Key;
        string plain = await mesh.CreateReusableKeyAsync();
        var server = await mesh.StartNodeAsync("db", plain);
        var admin = await mesh.StartNodeAsync("admin", ops);
        var guest = await mesh.StartNodeAsync("guest", plain);
        await KestrelMesh.UntilAsync(() => server.GetStatus().Peers.Count == 2 && admin.GetStatus().FindPeer("db") is not null && guest.GetStatus().FindPeer("db") is not null, "everyone sees db");

        using var target = new TcpListener(IPAddress.Loopback, 0);
        target.Start();
        var options = new MeshPortForwardOptions { MeshPort = 5432, Target = target.LocalEndpoint };
        options.AllowedTags.Add("tag:ops");
        await using var forwarder = new MeshPortForwarder(server, options);
        await forwarder.StartAsync();

        // The tagged peer gets through: the target accepts and the bytes arrive.
        await using (var stream = await admin.DialAsync("db", 5432).WaitAsync(KestrelMesh.Deadline))
        {
            using var accepted = await target.AcceptSocketAsync().WaitAsync(KestrelMesh.Deadline);
            await stream.WriteAsync(new byte[] { 42 });
            var one = new byte[1];
            Assert.Equal(1, await accepted.ReceiveAsync(one.AsMemory()).AsTask().WaitAsync(KestrelMesh.Deadline));
            Assert.Equal(42, one[0]);
        }

        // The untagged one is reset; the target never sees it.
        await using (var stream = await guest.DialAsync("db", 5432).WaitAsync(KestrelMesh.Deadline))
        {
            var ex = await Assert.ThrowsAnyAsync<IOException>(async () =>
            {
                var buffer = new byte[1];
                while (await stream.ReadAsync(buffer).AsTask().WaitAsync(KestrelMesh.Deadline) > 0)
                {
                }

                throw new IOException("closed without a reset");
            });
            Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(ex.InnerException).SocketErrorCode);
        }

        var stats = forwarder.GetStatistics();
        Assert.Equal(1, stats.Denied);
        Assert.Equal(1, stats.Forwarded);
        Assert.False(target.Pending());
    }
}
