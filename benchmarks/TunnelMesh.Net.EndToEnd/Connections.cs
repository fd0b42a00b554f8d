using System.Net;
using System.Net.Sockets;

namespace TunnelMesh.Net.EndToEnd;

/// <summary>One TCP connection as the tests use it, whichever stack carries it.</summary>
internal sealed class BenchConnection(Stream stream, Action<bool> setNoDelay, Func<ValueTask> shutdownSend) : IAsyncDisposable
{
    public Stream Stream { get; } = stream;

    public bool NoDelay
    {
        set => setNoDelay(value);
    }

    public ValueTask ShutdownSendAsync() => shutdownSend();

    public ValueTask DisposeAsync() => Stream.DisposeAsync();

    public static BenchConnection FromMesh(MeshTcpStream s) => new(s, v => s.NoDelay = v, () => s.ShutdownSendAsync());

    public static BenchConnection FromSocket(Socket socket)
    {
        var stream = new NetworkStream(socket, ownsSocket: true);
        return new BenchConnection(stream, v => socket.NoDelay = v, () =>
        {
            socket.Shutdown(SocketShutdown.Send);
            return ValueTask.CompletedTask;
        });
    }
}

/// <summary>The server's end: a listener that hands out <see cref="BenchConnection"/>s.</summary>
internal interface IBenchServerEnd : IAsyncDisposable
{
    /// <summary>What the client needs to reach the carrier: the UDP port of the node, or the TCP port.</summary>
    int ReadyPort { get; }

    Task<BenchConnection> AcceptAsync(CancellationToken cancellationToken);
}

/// <summary>The client's end: dials one connection per test.</summary>
internal interface IBenchClientEnd : IAsyncDisposable
{
    Task<BenchConnection> DialAsync(bool noDelay, CancellationToken cancellationToken);
}

/// <summary>Static WireGuard configuration of the two nodes: fixed mesh addresses, keys from the environment.</summary>
internal static class MeshSetup
{
    public static readonly IPAddress ClientMeshAddress = IPAddress.Parse("100.64.0.1");
    public static readonly IPAddress ServerMeshAddress = IPAddress.Parse("100.64.0.2");
    public const string PrivateKeyVariable = "TMBE_PRIVATE_KEY";
    public const string PeerKeyVariable = "TMBE_PEER_PUBLIC_KEY";

    public static IReadOnlyDictionary<string, long> Drops(MeshNode node) =>
        node.GetStatistics().Drops.ToDictionary(d => d.Key.ToString(), d => d.Value);

    public static MeshNodeOptions Options(IPAddress self, IPAddress peer, IPAddress listenAddress, int listenPort, EndPoint? peerEndpoint)
    {
        string privateText = Environment.GetEnvironmentVariable(PrivateKeyVariable)
            ?? throw new EnvironmentException($"{PrivateKeyVariable} is not set (the 'run' role sets it for its children)");
        string peerText = Environment.GetEnvironmentVariable(PeerKeyVariable)
            ?? throw new EnvironmentException($"{PeerKeyVariable} is not set");
        var options = new MeshNodeOptions
        {
            PrivateKey = NodePrivateKey.Parse(privateText),
            ListenAddress = listenAddress,
            ListenPort = listenPort,
        };
        options.Addresses.Add(self);
        var p = new MeshPeerOptions { PublicKey = NodePublicKey.Parse(peerText), Endpoint = peerEndpoint };
        p.AllowedIPs.Add(new IPNetwork(peer, 32));
        options.Peers.Add(p);
        return options;
    }
}

internal sealed class MeshServerEnd : IBenchServerEnd
{
    private readonly MeshNode _node;
    private readonly MeshTcpListener _listener;

    private MeshServerEnd(MeshNode node, MeshTcpListener listener)
    {
        _node = node;
        _listener = listener;
    }

    public int ReadyPort => _node.ListenPort;

    public IReadOnlyDictionary<string, long> Drops() => MeshSetup.Drops(_node);

    public static async Task<MeshServerEnd> StartAsync(IPAddress bind, int udpPort, int tcpPort, CancellationToken cancellationToken)
    {
        var node = new MeshNode(MeshSetup.Options(MeshSetup.ServerMeshAddress, MeshSetup.ClientMeshAddress, bind, udpPort, null));
        await node.StartAsync(cancellationToken);
        try
        {
            var listener = await node.ListenAsync(tcpPort, cancellationToken);
            return new MeshServerEnd(node, listener);
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    public async Task<BenchConnection> AcceptAsync(CancellationToken cancellationToken) =>
        BenchConnection.FromMesh(await _listener.AcceptAsync(cancellationToken));

    public async ValueTask DisposeAsync()
    {
        await _listener.DisposeAsync();
        await _node.DisposeAsync();
    }
}

internal sealed class MeshClientEnd : IBenchClientEnd
{
    private readonly MeshNode _node;
    private readonly int _port;

    private MeshClientEnd(MeshNode node, int port)
    {
        _node = node;
        _port = port;
    }

    public static async Task<MeshClientEnd> StartAsync(IPAddress bind, IPEndPoint server, int tcpPort, CancellationToken cancellationToken)
    {
        var node = new MeshNode(MeshSetup.Options(MeshSetup.ClientMeshAddress, MeshSetup.ServerMeshAddress, bind, 0, server));
        await node.StartAsync(cancellationToken);
        return new MeshClientEnd(node, tcpPort);
    }

    public async Task<BenchConnection> DialAsync(bool noDelay, CancellationToken cancellationToken)
    {
        var options = new MeshTcpOptions { NoDelay = noDelay, ConnectTimeout = TimeSpan.FromSeconds(20) };
        var stream = await _node.DialAsync(new IPEndPoint(MeshSetup.ServerMeshAddress, _port), options, cancellationToken);
        return BenchConnection.FromMesh(stream);
    }

    public IReadOnlyDictionary<string, long> Drops() => MeshSetup.Drops(_node);

    public ValueTask DisposeAsync() => _node.DisposeAsync();
}

internal sealed class KernelServerEnd(Socket listener) : IBenchServerEnd
{
    public int ReadyPort => ((IPEndPoint)listener.LocalEndPoint!).Port;

    public static KernelServerEnd Start(IPAddress bind, int tcpPort)
    {
        var listener = new Socket(bind.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(new IPEndPoint(bind, tcpPort));
            listener.Listen(16);
            return new KernelServerEnd(listener);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    public async Task<BenchConnection> AcceptAsync(CancellationToken cancellationToken) =>
        BenchConnection.FromSocket(await listener.AcceptAsync(cancellationToken));

    public ValueTask DisposeAsync()
    {
        listener.Dispose();
        return ValueTask.CompletedTask;
    }
}

internal sealed class KernelClientEnd(IPEndPoint server) : IBenchClientEnd
{
    public async Task<BenchConnection> DialAsync(bool noDelay, CancellationToken cancellationToken)
    {
        var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = noDelay };
        try
        {
            using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            connectTimeout.CancelAfter(TimeSpan.FromSeconds(20));
            await socket.ConnectAsync(server, connectTimeout.Token);
            return BenchConnection.FromSocket(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
