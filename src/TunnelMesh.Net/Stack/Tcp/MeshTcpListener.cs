using System.Net;

namespace TunnelMesh.Net;

/// <summary>A TCP listener on one port of a node's mesh address (from <c>MeshNode.ListenAsync</c>).</summary>
public sealed class MeshTcpListener : IAsyncDisposable
{
    internal MeshTcpListener()
    {
        LocalEndPoint = new IPEndPoint(IPAddress.Any, 0);
    }

    /// <summary>The node's mesh address and the listening port.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Waits for the next established connection.</summary>
    /// <exception cref="ObjectDisposedException">The listener (or its node) was disposed.</exception>
    public ValueTask<MeshTcpStream> AcceptAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();

    /// <summary>Stops listening: the port is free again, connections waiting to be accepted are reset. Safe to call twice.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
