using System.Net;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Tests.Support;

/// <summary>Two MeshNodes that are each other's peer over loopback UDP, optionally on a manual clock.</summary>
internal sealed class NodePair : IAsyncDisposable
{
    public static readonly IPAddress IpA = IPAddress.Parse("100.64.0.1");
    public static readonly IPAddress IpB = IPAddress.Parse("100.64.0.2");

    private NodePair(MeshNode a, MeshNode b, NodePrivateKey keyA, NodePrivateKey keyB)
    {
        A = a;
        B = b;
        KeyA = keyA;
        KeyB = keyB;
    }

    public MeshNode A { get; }

    public MeshNode B { get; }

    public NodePrivateKey KeyA { get; }

    public NodePrivateKey KeyB { get; }

    /// <summary>Starts B (endpoint of A unknown), then A pointed at B.</summary>
    public static async Task<NodePair> StartAsync(
        TimeProvider? time = null,
        Action<MeshPeerOptions>? configurePeerOfA = null,
        Func<MeshNodeOptions, PacketBufferPool, DropCounters, IDatagramTransport>? transportA = null,
        Func<MeshNodeOptions, PacketBufferPool, DropCounters, IDatagramTransport>? transportB = null,
        Microsoft.Extensions.Logging.ILoggerFactory? loggerA = null,
        Microsoft.Extensions.Logging.ILoggerFactory? loggerB = null)
    {
        var keyA = NodePrivateKey.Generate();
        var keyB = NodePrivateKey.Generate();
        var b = new MeshNode(Options(keyB, IpB, keyA.PublicKey, IpA, null, null), loggerB, time, transportB);
        await b.StartAsync();
        var a = new MeshNode(Options(keyA, IpA, keyB.PublicKey, IpB, new IPEndPoint(IPAddress.Loopback, b.ListenPort), configurePeerOfA), loggerA, time, transportA);
        await a.StartAsync();
        return new NodePair(a, b, keyA, keyB);
    }

    public static MeshNodeOptions Options(NodePrivateKey key, IPAddress address, NodePublicKey peer, IPAddress peerIp, IPEndPoint? endpoint, Action<MeshPeerOptions>? configure)
    {
        var options = new MeshNodeOptions { PrivateKey = key, ListenAddress = IPAddress.Loopback };
        options.Addresses.Add(address);
        var p = new MeshPeerOptions { PublicKey = peer, Endpoint = endpoint };
        p.AllowedIPs.Add(new IPNetwork(peerIp, 32));
        configure?.Invoke(p);
        options.Peers.Add(p);
        return options;
    }

    /// <summary>A task that completes the next time <paramref name="node"/> completes a handshake.</summary>
    public static Task NextHandshake(MeshNode node)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Handler(WireGuard.WireGuardPeer _)
        {
            node.Device.HandshakeCompleted -= Handler;
            tcs.TrySetResult();
        }

        node.Device.HandshakeCompleted += Handler;
        return tcs.Task;
    }

    /// <summary>A task that completes when <paramref name="node"/> receives an authenticated keepalive.</summary>
    public static Task NextKeepalive(MeshNode node) => NextTransportMessage(node, length => length == 0);

    /// <summary>A task that completes when <paramref name="node"/> receives any authenticated transport message with data.</summary>
    public static Task NextTransport(MeshNode node) => NextTransportMessage(node, length => length > 0);

    private static Task NextTransportMessage(MeshNode node, Func<int, bool> matches)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Handler(WireGuard.WireGuardPeer _, int length)
        {
            if (matches(length))
            {
                node.Device.TransportReceived -= Handler;
                tcs.TrySetResult();
            }
        }

        node.Device.TransportReceived += Handler;
        return tcs.Task;
    }

    public async ValueTask DisposeAsync()
    {
        await A.DisposeAsync();
        await B.DisposeAsync();
    }
}

public static class TaskTimeouts
{
    /// <summary>Awaits with a bound, failing the test with a message instead of hanging.</summary>
    public static Task Within(this Task task, TimeSpan limit, string what) => task.Within(limit, () => what);

    public static async Task Within(this Task task, TimeSpan limit, Func<string> what)
    {
        try
        {
            await task.WaitAsync(limit);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"{what()} did not happen within {limit}");
        }
    }

    public static Task<T> Within<T>(this Task<T> task, TimeSpan limit, string what) => task.Within(limit, () => what);

    /// <summary>Awaits a result with a bound; the message is built only on failure.</summary>
    public static async Task<T> Within<T>(this Task<T> task, TimeSpan limit, Func<string> what)
    {
        try
        {
            return await task.WaitAsync(limit);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"{what()} did not happen within {limit}");
            throw;
        }
    }

    /// <summary>Waits until a condition holds (checked on every change signal or every few ms), bounded.</summary>
    public static async Task Until(Func<bool> condition, TimeSpan limit, string what)
    {
        var deadline = DateTime.UtcNow + limit;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"{what} did not happen within {limit}");
            }

            await Task.Delay(5);
        }
    }
}
