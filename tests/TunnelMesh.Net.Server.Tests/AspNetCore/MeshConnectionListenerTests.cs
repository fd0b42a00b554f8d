using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using TunnelMesh.Net.Server.AspNetCore;
using TunnelMesh.Net.Server.Tests.EndToEnd;

namespace TunnelMesh.Net.Server.Tests.AspNetCore;

/// <summary>
/// The mesh transport as Kestrel drives it, without Kestrel: the factory claims only mesh endpoints, an accepted
/// connection carries its features and moves bytes both ways, ConnectionClosed fires when the peer closes,
/// Abort resets, DisposeAsync closes, and after unbind AcceptAsync returns null and dials are refused.
/// </summary>
public sealed class MeshConnectionListenerTests
{
    [Fact]
    public void The_factory_claims_mesh_endpoints_only_and_MeshEndPoint_reads_well()
    {
        using ServiceProvider services = new ServiceCollection().BuildServiceProvider();
        var factory = new MeshConnectionListenerFactory(services);
        Assert.True(factory.CanBind(new MeshEndPoint(80)));
        Assert.True(factory.CanBind(new MeshEndPoint(443, "public")));
        Assert.False(factory.CanBind(new IPEndPoint(IPAddress.Loopback, 80)));
        Assert.False(factory.CanBind(new DnsEndPoint("localhost", 80)));
        Assert.False(factory.CanBind(new UnixDomainSocketEndPoint("/tmp/x.sock")));

        Assert.Equal("mesh:default:80", new MeshEndPoint(80).ToString());
        Assert.Equal("mesh:public:8080", new MeshEndPoint(8080, "public").ToString());
        Assert.Equal(new MeshEndPoint(8080, "public"), new MeshEndPoint(8080, "public"));
        Assert.NotEqual(new MeshEndPoint(8080, "public"), new MeshEndPoint(8080));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MeshEndPoint(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MeshEndPoint(65536));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MeshListenOptions { Port = 0 });
    }

    [Fact]
    public async Task Binding_an_unregistered_node_says_what_to_register()
    {
        using ServiceProvider services = new ServiceCollection().BuildServiceProvider();
        var factory = new MeshConnectionListenerFactory(services);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => factory.BindAsync(new MeshEndPoint(80, "nope")).AsTask());
        Assert.Contains("AddMeshNode(\"nope\"", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connection_carries_features_and_bytes_fires_ConnectionClosed_when_the_peer_closes_and_unbind_ends_accepting()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        (MeshNode a, MeshNode b) = await UseMeshTests.StartPairAsync(mesh, "lst-a", "lst-b");
        using ServiceProvider services = new ServiceCollection().BuildServiceProvider();
        using var cts = new CancellationTokenSource(KestrelMesh.Deadline);
        var factory = new MeshConnectionListenerFactory(services);
        IConnectionListener listener = await factory.BindAsync(new MeshEndPoint(a, 9100), cts.Token);
        try
        {
            Assert.Equal(new MeshEndPoint(a, 9100), listener.EndPoint);

            ValueTask<ConnectionContext?> accepting = listener.AcceptAsync(cts.Token);
            MeshTcpStream client = await b.DialAsync("lst-a", 9100, cts.Token);
            ConnectionContext connection = (await accepting)!;
            Assert.NotNull(connection);

            // Features as Kestrel and the app read them.
            Assert.Equal(client.LocalEndPoint, connection.RemoteEndPoint);
            Assert.Equal(new IPEndPoint(a.Address, 9100), connection.LocalEndPoint);
            Assert.Same(connection.Transport, connection.Features.Get<IConnectionTransportFeature>()!.Transport);
            Assert.Equal(connection.ConnectionId, connection.Features.Get<IConnectionIdFeature>()!.ConnectionId);
            Assert.Equal(client.LocalEndPoint, connection.Features.Get<IConnectionEndPointFeature>()!.RemoteEndPoint);
            connection.Features.Get<IConnectionItemsFeature>()!.Items["k"] = "v";
            Assert.Equal("v", connection.Items["k"]);
            MeshPeerIdentity peer = connection.Features.Get<IMeshPeerFeature>()!.Peer;
            Assert.Equal("lst-b", peer.Name);
            Assert.Equal(b.PublicKey, peer.PublicKey);
            Assert.True(peer.HasTag("ci"));

            // Bytes both ways.
            await client.WriteAsync(Encoding.ASCII.GetBytes("ping"), cts.Token);
            Assert.Equal("ping", await ReadAsciiAsync(connection.Transport.Input, 4, cts.Token));
            await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes("pong"), cts.Token);
            byte[] pong = new byte[4];
            await client.ReadExactlyAsync(pong, cts.Token);
            Assert.Equal("pong", Encoding.ASCII.GetString(pong));

            // The peer closes: the input ends and ConnectionClosed fires.
            var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using CancellationTokenRegistration registration = connection.ConnectionClosed.Register(() => closed.TrySetResult());
            await client.DisposeAsync();
            await closed.Task.WaitAsync(cts.Token);
            ReadResult end = await connection.Transport.Input.ReadAsync(cts.Token);
            Assert.True(end.IsCompleted);
            await connection.Transport.Input.CompleteAsync();
            await connection.Transport.Output.CompleteAsync();
            await connection.DisposeAsync();
            await connection.DisposeAsync(); // twice is harmless

            // Unbind: a pending accept returns null, later ones too, and a dial is refused.
            ValueTask<ConnectionContext?> pending = listener.AcceptAsync(cts.Token);
            await listener.UnbindAsync(cts.Token);
            Assert.Null(await pending);
            Assert.Null(await listener.AcceptAsync(cts.Token));
            SocketException refused = await Assert.ThrowsAsync<SocketException>(() => b.DialAsync("lst-a", 9100, cts.Token));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }
        finally
        {
            await listener.DisposeAsync();
        }
    }

    [Fact]
    public async Task Abort_resets_the_peer_DisposeAsync_closes_it_gracefully_and_disposing_the_listener_aborts_leftovers()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        (MeshNode a, MeshNode b) = await UseMeshTests.StartPairAsync(mesh, "abort-a", "abort-b");
        using ServiceProvider services = new ServiceCollection().BuildServiceProvider();
        using var cts = new CancellationTokenSource(KestrelMesh.Deadline);
        var factory = new MeshConnectionListenerFactory(services);
        var listener = (MeshConnectionListener)await factory.BindAsync(new MeshEndPoint(a, 9101), cts.Token);
        try
        {
            // Abort: the peer's read fails with a reset/abort, ConnectionClosed fires.
            (MeshTcpStream c1, ConnectionContext s1) = await ConnectAsync(b, listener, cts.Token);
            var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (s1.ConnectionClosed.Register(() => closed.TrySetResult()))
            {
                s1.Abort(new ConnectionAbortedException("test abort"));
                await closed.Task.WaitAsync(cts.Token);
            }

            await AssertResetAsync(c1, cts.Token);
            await s1.DisposeAsync();
            await c1.DisposeAsync();

            // DisposeAsync (as Kestrel does when it is done): data written before arrives, then the end of the stream.
            (MeshTcpStream c2, ConnectionContext s2) = await ConnectAsync(b, listener, cts.Token);
            await s2.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes("bye"), cts.Token);
            await s2.DisposeAsync();
            byte[] got = new byte[16];
            int n = await c2.ReadAtLeastAsync(got, 3, throwOnEndOfStream: false, cts.Token);
            Assert.Equal("bye", Encoding.ASCII.GetString(got, 0, n));
            Assert.Equal(0, await c2.ReadAsync(got, cts.Token));
            await c2.DisposeAsync();
            await KestrelMesh.UntilAsync(() => listener.OpenConnections == 0, "ended connections leave the listener's set");

            // A connection Kestrel never disposed: the listener's DisposeAsync aborts it.
            (MeshTcpStream c3, ConnectionContext s3) = await ConnectAsync(b, listener, cts.Token);
            Assert.Equal(1, listener.OpenConnections);
            await listener.DisposeAsync();
            Assert.Equal(0, listener.OpenConnections);
            await AssertResetAsync(c3, cts.Token);
            await s3.DisposeAsync();
            await c3.DisposeAsync();
        }
        finally
        {
            await listener.DisposeAsync();
        }
    }

    private static async Task<(MeshTcpStream Client, ConnectionContext Server)> ConnectAsync(MeshNode from, MeshConnectionListener listener, CancellationToken cancellationToken)
    {
        ValueTask<ConnectionContext?> accepting = listener.AcceptAsync(cancellationToken);
        var port = ((MeshEndPoint)listener.EndPoint).Port;
        MeshTcpStream client = await from.DialAsync(((MeshEndPoint)listener.EndPoint).Node!.Address, port, cancellationToken);
        return (client, (await accepting)!);
    }

    /// <summary>The peer's read fails with a reset (not a graceful end of stream).</summary>
    private static async Task AssertResetAsync(MeshTcpStream client, CancellationToken cancellationToken)
    {
        IOException error = await Assert.ThrowsAsync<IOException>(async () => Assert.Fail($"read returned {await client.ReadAsync(new byte[16], cancellationToken)}"));
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(error.InnerException).SocketErrorCode);
    }

    private static async Task<string> ReadAsciiAsync(PipeReader reader, int count, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult result = await reader.ReadAsync(cancellationToken);
            if (result.Buffer.Length >= count || result.IsCompleted)
            {
                string text = Encoding.ASCII.GetString(result.Buffer.Slice(0, Math.Min(count, result.Buffer.Length)).ToArray());
                reader.AdvanceTo(result.Buffer.GetPosition(Math.Min(count, result.Buffer.Length)));
                return text;
            }

            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }
}
