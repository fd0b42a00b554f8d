using System.Net;
using TunnelMesh.Net.Stack.Tcp;

namespace TunnelMesh.Net;

/// <summary>
/// A TCP listener on one port of a node's mesh address (from <see cref="MeshNode.ListenAsync(int, CancellationToken)"/>).
/// The handshake is completed by the node; <see cref="AcceptAsync"/> hands out established connections.
/// </summary>
/// <remarks>
/// Up to <see cref="MeshTcpListenerOptions.Backlog"/> established connections wait to be accepted
/// (and as many half-open ones); beyond that, SYNs are dropped and counted
/// (<see cref="DropReason.TcpBacklogFull"/>) so the client retries, as with a kernel listener.
/// Several accepts may wait at once.
/// </remarks>
public sealed class MeshTcpListener : IAsyncDisposable
{
    private readonly TcpListenerCore _core;

    internal MeshTcpListener(TcpListenerCore core, IPEndPoint localEndPoint)
    {
        _core = core;
        LocalEndPoint = localEndPoint;
    }

    /// <summary>The node's mesh address and the listening port.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Waits for the next established connection.</summary>
    /// <exception cref="ObjectDisposedException">The listener (or its node) was disposed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async ValueTask<MeshTcpStream> AcceptAsync(CancellationToken cancellationToken = default)
    {
        var connection = await _core.AcceptAsync(cancellationToken).ConfigureAwait(false);
        return new MeshTcpStream(connection);
    }

    /// <summary>Stops listening: the port is free again, connections waiting to be accepted are reset. Safe to call twice.</summary>
    public ValueTask DisposeAsync()
    {
        _core.Stop();
        return ValueTask.CompletedTask;
    }
}
