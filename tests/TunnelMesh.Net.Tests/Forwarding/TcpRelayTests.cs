using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using TunnelMesh.Net.Forwarding;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Tests.Forwarding;

/// <summary>
/// <see cref="TcpRelay"/> on its own (the pipe relay: a Pipelines.Sockets.Unofficial SocketConnection on the
/// host side, pipe adapters over the mesh connection). Node B runs the relay between a mesh connection it
/// accepted and one end of a kernel TCP connection on 127.0.0.1; the test drives node A's end of the mesh
/// connection and the other kernel end.
/// </summary>
public sealed class TcpRelayTests
{
    private const int MeshPort = 7000;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Sixty_four_MiB_each_way_keep_their_sha256_and_are_counted_then_both_close_gracefully()
    {
        const int Size = 64 * 1024 * 1024;
        await using var setup = await RelaySetup.StartAsync();
        byte[] up = new byte[Size];
        byte[] down = new byte[Size];
        new Random(11).NextBytes(up);
        new Random(12).NextBytes(down);

        // Odd write sizes on both sides, so chunks never line up with the relay's segments.
        Task<byte[]> hostReceives = Drain.ReceiveAllHashAsync(setup.Host);
        Task<byte[]> meshReceives = Drain.ReadAllHashAsync(setup.Mesh);
        Task meshSends = Task.Run(async () =>
        {
            for (int i = 0; i < Size; i += 50_001)
            {
                await setup.Mesh.WriteAsync(up.AsMemory(i, Math.Min(50_001, Size - i)));
            }

            await setup.Mesh.ShutdownSendAsync();
        });
        Task hostSends = Task.Run(async () =>
        {
            for (int i = 0; i < Size; i += 70_003)
            {
                await setup.Host.SendAsync(down.AsMemory(i, Math.Min(70_003, Size - i)), SocketFlags.None);
            }

            setup.Host.Shutdown(SocketShutdown.Send);
        });

        var all = TimeSpan.FromMinutes(4);
        await Task.WhenAll(meshSends, hostSends).Within(all, "64 MiB sent each way");
        Assert.Equal(SHA256.HashData(up), await hostReceives.Within(all, "the host socket received everything"));
        Assert.Equal(SHA256.HashData(down), await meshReceives.Within(all, "the mesh peer received everything"));

        RelayResult result = await setup.Relay.Within(Limit, "the relay ended");
        Assert.True(result.Graceful);
        Assert.Null(result.Error);
        Assert.Equal(Size, result.MeshToSocket);
        Assert.Equal(Size, result.SocketToMesh);
        Assert.Equal(Size, setup.Counters.MeshToSocket);
        Assert.Equal(Size, setup.Counters.SocketToMesh);
    }

    [Fact]
    public async Task After_the_host_half_closes_everything_the_mesh_sends_still_arrives_before_the_fin()
    {
        // The host's FIN reaches the mesh peer first; only then does the mesh peer send 8 MiB and its own FIN.
        // The relay must send the whole tail on the socket before the socket's FIN and close.
        const int Size = 8 * 1024 * 1024;
        await using var setup = await RelaySetup.StartAsync();
        setup.Host.Shutdown(SocketShutdown.Send);
        byte[] none = new byte[1];
        Assert.Equal(0, await setup.Mesh.ReadAsync(none).AsTask().Within(Limit, "the host's FIN reached the mesh peer"));

        byte[] tail = new byte[Size];
        new Random(13).NextBytes(tail);
        Task<byte[]> hostReceives = Drain.ReceiveAllHashAsync(setup.Host);
        await setup.Mesh.WriteAsync(tail);
        await setup.Mesh.ShutdownSendAsync();

        Assert.Equal(SHA256.HashData(tail), await hostReceives.Within(TimeSpan.FromMinutes(2), "the host read the tail to the end"));
        RelayResult result = await setup.Relay.Within(Limit, "the relay ended");
        Assert.True(result.Graceful);
        Assert.Equal(Size, result.MeshToSocket);
        Assert.Equal(0, result.SocketToMesh);
    }

    [Fact]
    public async Task After_the_mesh_peer_half_closes_the_host_can_still_answer()
    {
        await using var setup = await RelaySetup.StartAsync();
        await setup.Mesh.WriteAsync("question"u8.ToArray());
        await setup.Mesh.ShutdownSendAsync();
        Assert.Equal("question"u8.ToArray(), await Drain.ReceiveAllAsync(setup.Host).Within(Limit, "the host read the question and the FIN"));

        await setup.Host.SendAsync("answer"u8.ToArray(), SocketFlags.None);
        setup.Host.Shutdown(SocketShutdown.Send);
        Assert.Equal("answer"u8.ToArray(), await Drain.ReadAllAsync(setup.Mesh).Within(Limit, "the mesh peer read the answer and the FIN"));
        Assert.True((await setup.Relay.Within(Limit, "the relay ended")).Graceful);
    }

    [Fact]
    public async Task A_reset_from_the_mesh_peer_resets_the_host_socket_instead_of_ending_it()
    {
        await using var setup = await RelaySetup.StartAsync();
        await setup.Mesh.WriteAsync("x"u8.ToArray());
        byte[] one = new byte[1];
        Assert.Equal(1, await setup.Host.ReceiveAsync(one, SocketFlags.None).Within(Limit, "the first byte arrived"));

        setup.Mesh.Abort();

        // A RST, not a FIN: the host's read fails instead of returning end of stream.
        var reset = await Assert.ThrowsAsync<SocketException>(() => Drain.ReceiveAllAsync(setup.Host).Within(Limit, "the host socket ended"));
        Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
        RelayResult result = await setup.Relay.Within(Limit, "the relay ended");
        Assert.False(result.Graceful);
        Assert.NotNull(result.Error);
    }

    [Fact]
    public async Task A_reset_from_the_host_socket_resets_the_mesh_connection()
    {
        await using var setup = await RelaySetup.StartAsync();
        await setup.Host.SendAsync("y"u8.ToArray(), SocketFlags.None);
        byte[] one = new byte[1];
        Assert.Equal(1, await setup.Mesh.ReadAsync(one).AsTask().Within(Limit, "the first byte arrived"));

        setup.Host.LingerState = new LingerOption(true, 0);
        setup.Host.Close();

        var reset = await Assert.ThrowsAsync<IOException>(() => Drain.ReadAllAsync(setup.Mesh).Within(Limit, "the mesh connection ended"));
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(reset.InnerException).SocketErrorCode);
        RelayResult result = await setup.Relay.Within(Limit, "the relay ended");
        Assert.False(result.Graceful);
        Assert.NotNull(result.Error);
    }

    [Fact]
    public async Task Stopping_resets_both_sides_and_reports_no_error()
    {
        await using var setup = await RelaySetup.StartAsync();
        await setup.Mesh.WriteAsync("z"u8.ToArray());
        byte[] one = new byte[1];
        Assert.Equal(1, await setup.Host.ReceiveAsync(one, SocketFlags.None).Within(Limit, "the first byte arrived"));

        await setup.Stop.CancelAsync();

        RelayResult result = await setup.Relay.Within(Limit, "the relay ended");
        Assert.False(result.Graceful);
        Assert.Null(result.Error);
        var hostReset = await Assert.ThrowsAsync<SocketException>(() => Drain.ReceiveAllAsync(setup.Host).Within(Limit, "the host socket ended"));
        Assert.Equal(SocketError.ConnectionReset, hostReset.SocketErrorCode);
        var meshReset = await Assert.ThrowsAsync<IOException>(() => Drain.ReadAllAsync(setup.Mesh).Within(Limit, "the mesh connection ended"));
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(meshReset.InnerException).SocketErrorCode);
    }

    /// <summary>What the relay counted through <see cref="IRelayCounters"/>.</summary>
    private sealed class Counters : IRelayCounters
    {
        private long _socketToMesh;
        private long _meshToSocket;

        public long SocketToMesh => Interlocked.Read(ref _socketToMesh);

        public long MeshToSocket => Interlocked.Read(ref _meshToSocket);

        public void CountSocketToMesh(int bytes) => Interlocked.Add(ref _socketToMesh, bytes);

        public void CountMeshToSocket(int bytes) => Interlocked.Add(ref _meshToSocket, bytes);
    }

    /// <summary>The two nodes, the relay running on B, and the two ends the test drives.</summary>
    private sealed class RelaySetup : IAsyncDisposable
    {
        private readonly NodePair _pair;

        private RelaySetup(NodePair pair, MeshTcpStream mesh, Socket host, Task<RelayResult> relay, Counters counters, CancellationTokenSource stop)
        {
            _pair = pair;
            Mesh = mesh;
            Host = host;
            Relay = relay;
            Counters = counters;
            Stop = stop;
        }

        /// <summary>Node A's end of the mesh connection (the mesh peer).</summary>
        public MeshTcpStream Mesh { get; }

        /// <summary>The kernel socket at the other end of the relay's host socket (the host application).</summary>
        public Socket Host { get; }

        public Task<RelayResult> Relay { get; }

        public Counters Counters { get; }

        /// <summary>The relay's stopping token.</summary>
        public CancellationTokenSource Stop { get; }

        public static async Task<RelaySetup> StartAsync()
        {
            NodePair pair = await NodePair.StartAsync();
            await using MeshTcpListener listener = await pair.B.ListenAsync(MeshPort);
            Task<MeshTcpStream> accepted = listener.AcceptAsync().AsTask();
            MeshTcpStream mesh = await pair.A.DialAsync(NodePair.IpB, MeshPort).WaitAsync(Limit);
            MeshTcpStream relayMesh = await accepted.WaitAsync(Limit);

            using var kernel = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            kernel.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            kernel.Listen(1);
            var host = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await host.ConnectAsync(kernel.LocalEndPoint!);
            Socket relaySocket = await kernel.AcceptAsync().WaitAsync(Limit);

            var counters = new Counters();
            var stop = new CancellationTokenSource();
            Task<RelayResult> relay = TcpRelay.RunAsync(relaySocket, relayMesh, counters, stop.Token);
            return new RelaySetup(pair, mesh, host, relay, counters, stop);
        }

        public async ValueTask DisposeAsync()
        {
            await Stop.CancelAsync();
            await Relay.WaitAsync(Limit);
            Mesh.Abort();
            Host.Dispose();
            Stop.Dispose();
            await _pair.DisposeAsync();
        }
    }
}
