using System.Buffers.Binary;
using System.Net;
using TunnelMesh.Net.Forwarding;

namespace TunnelMesh.Net.ForwardBench;

/// <summary>Which relay a forwarder runs.</summary>
internal enum Relay
{
    /// <summary>The baseline: plain sockets, one pooled buffer per direction (<see cref="SocketRelay"/>).</summary>
    Sockets,

    /// <summary>The library's relay: Pipelines.Sockets.Unofficial on the host side (<see cref="TcpRelay"/>).</summary>
    Pipelines,
}

/// <summary>Which way the bytes go.</summary>
internal enum Direction
{
    /// <summary>Node B's client writes <c>--bytes</c> through the forwarder into the sink.</summary>
    Upload,

    /// <summary>The source writes <c>--bytes</c> through the forwarder to node B's client.</summary>
    Download,
}

/// <summary>
/// Two MeshNodes with static WireGuard peers over 127.0.0.1 UDP (A at 100.64.0.1, B at 100.64.0.2, inside this
/// process only); on A four forwarders, one per relay and target: mesh ports 7001 (sockets → sink),
/// 7002 (sockets → source), 7101 (pipelines → sink), 7102 (pipelines → source). B dials them.
/// </summary>
internal sealed class ForwardHost : IAsyncDisposable
{
    private const int ChunkSize = 64 * 1024;
    private static readonly IPAddress AddressA = IPAddress.Parse("100.64.0.1");
    private static readonly IPAddress AddressB = IPAddress.Parse("100.64.0.2");
    private static readonly byte[] Chunk = new byte[ChunkSize];

    private readonly MeshNode _a;
    private readonly MeshNode _b;
    private readonly Targets _targets;
    private readonly List<MeshPortForwarder> _forwarders;

    private ForwardHost(MeshNode a, MeshNode b, Targets targets, List<MeshPortForwarder> forwarders)
    {
        _a = a;
        _b = b;
        _targets = targets;
        _forwarders = forwarders;
    }

    public static async Task<ForwardHost> StartAsync(CancellationToken cancellationToken)
    {
        var keyA = NodePrivateKey.Generate();
        var keyB = NodePrivateKey.Generate();
        var a = new MeshNode(BenchNodes.Options(keyA, AddressA, keyB.PublicKey, AddressB, null));
        await a.StartAsync(cancellationToken);
        var b = new MeshNode(BenchNodes.Options(keyB, AddressB, keyA.PublicKey, AddressA, new IPEndPoint(IPAddress.Loopback, a.ListenPort)));
        await b.StartAsync(cancellationToken);
        var targets = new Targets();
        var forwarders = new List<MeshPortForwarder>();
        foreach (Relay relay in Enum.GetValues<Relay>())
        {
            foreach (Direction direction in Enum.GetValues<Direction>())
            {
                var forwarder = new MeshPortForwarder(a, new MeshPortForwardOptions
                {
                    MeshPort = Port(relay, direction),
                    Target = direction == Direction.Upload ? targets.Sink : targets.Source,
                })
                {
                    Relay = relay == Relay.Sockets ? SocketRelay.RunAsync : TcpRelay.RunAsync,
                };
                await forwarder.StartAsync(cancellationToken);
                forwarders.Add(forwarder);
            }
        }

        return new ForwardHost(a, b, targets, forwarders);
    }

    private static int Port(Relay relay, Direction direction) => (relay == Relay.Sockets ? 7000 : 7100) + (direction == Direction.Upload ? 1 : 2);

    /// <summary>One connection through the forwarder of <paramref name="relay"/>: <paramref name="bytes"/> one way, checked by count.</summary>
    public async Task TransferAsync(Relay relay, Direction direction, long bytes, CancellationToken cancellationToken)
    {
        await using MeshTcpStream mesh = await _b.DialAsync(AddressA, Port(relay, direction), cancellationToken);
        byte[] count = new byte[8];
        if (direction == Direction.Upload)
        {
            for (long left = bytes; left > 0; left -= ChunkSize)
            {
                await mesh.WriteAsync(Chunk.AsMemory(0, (int)Math.Min(left, ChunkSize)), cancellationToken);
            }

            await mesh.ShutdownSendAsync(cancellationToken);
            await mesh.ReadExactlyAsync(count, cancellationToken);
            long received = BinaryPrimitives.ReadInt64BigEndian(count);
            if (received != bytes)
            {
                throw new InvalidOperationException($"the sink received {received} bytes of {bytes} ({relay})");
            }
        }
        else
        {
            BinaryPrimitives.WriteInt64BigEndian(count, bytes);
            await mesh.WriteAsync(count, cancellationToken);
            byte[] buffer = new byte[ChunkSize];
            long received = 0;
            int n;
            while ((n = await mesh.ReadAsync(buffer, cancellationToken)) > 0)
            {
                received += n;
            }

            if (received != bytes)
            {
                throw new InvalidOperationException($"the client received {received} bytes of {bytes} ({relay})");
            }
        }
    }

    /// <summary>Both nodes' packet drops so far.</summary>
    public long Drops() => _a.GetStatistics().TotalDrops + _b.GetStatistics().TotalDrops;

    public async ValueTask DisposeAsync()
    {
        foreach (MeshPortForwarder forwarder in _forwarders)
        {
            await forwarder.DisposeAsync();
        }

        await _targets.DisposeAsync();
        await _b.DisposeAsync();
        await _a.DisposeAsync();
    }
}
