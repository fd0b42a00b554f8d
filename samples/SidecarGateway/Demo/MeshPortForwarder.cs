using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using TunnelMesh.Net;

namespace SidecarGateway.Demo;

/// <summary>
/// Serves a TCP service of this host on a port of a node's mesh address: each connection accepted
/// on the mesh is piped to <c>target</c> (e.g. a Kestrel app on 127.0.0.1), both ways, with half-closes
/// passed on. The way to put an existing local service on the mesh without changing it.
/// </summary>
public sealed class MeshPortForwarder : IAsyncDisposable
{
    private readonly MeshTcpListener _listener;
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Task, byte> _connections = new();
    private readonly Task _accepting;

    private MeshPortForwarder(MeshTcpListener listener, IPEndPoint target)
    {
        _listener = listener;
        _target = target;
        _accepting = AcceptLoopAsync();
    }

    /// <summary>Listens on <paramref name="meshPort"/> of <paramref name="node"/> and forwards to <paramref name="target"/>.</summary>
    public static async Task<MeshPortForwarder> StartAsync(MeshNode node, int meshPort, IPEndPoint target, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(node);
        var listener = await node.ListenAsync(meshPort, cancellationToken).ConfigureAwait(false);
        return new MeshPortForwarder(listener, target);
    }

    /// <summary>The mesh address and port listened on.</summary>
    public IPEndPoint LocalEndPoint => _listener.LocalEndPoint;

    private async Task AcceptLoopAsync()
    {
        await Task.Yield();
        while (!_stop.IsCancellationRequested)
        {
            MeshTcpStream mesh;
            try
            {
                mesh = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }

            var connection = PipeAsync(mesh);
            _connections.TryAdd(connection, 0);
            _ = connection.ContinueWith(t => _connections.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async Task PipeAsync(MeshTcpStream mesh)
    {
        await using (mesh.ConfigureAwait(false))
        {
            using var socket = new Socket(_target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(_target, _stop.Token).ConfigureAwait(false);
                await using var local = new NetworkStream(socket, ownsSocket: false);
                var up = CopyAsync(mesh, local, () =>
                {
                    socket.Shutdown(SocketShutdown.Send);
                    return ValueTask.CompletedTask;
                });
                var down = CopyAsync(local, mesh, () => mesh.ShutdownSendAsync());
                await Task.WhenAll(up, down).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                mesh.Abort();
            }
        }
    }

    private async Task CopyAsync(Stream from, Stream to, Func<ValueTask> halfClose)
    {
        byte[] buffer = new byte[64 * 1024];
        int n;
        while ((n = await from.ReadAsync(buffer, _stop.Token).ConfigureAwait(false)) > 0)
        {
            await to.WriteAsync(buffer.AsMemory(0, n), _stop.Token).ConfigureAwait(false);
        }

        await halfClose().ConfigureAwait(false);
    }

    /// <summary>Stops listening and ends the open connections.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _listener.DisposeAsync().ConfigureAwait(false);
        await _accepting.ConfigureAwait(false);
        await Task.WhenAll(_connections.Keys).ConfigureAwait(false);
        _stop.Dispose();
    }
}
