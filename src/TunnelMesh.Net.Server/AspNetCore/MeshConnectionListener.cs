using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Server.AspNetCore;

/// <summary>
/// Kestrel's listener on a <see cref="MeshEndPoint"/>: accepts from a <see cref="MeshTcpListener"/>, asks the node
/// who the caller is, and hands out <see cref="MeshConnection"/>s. After <see cref="UnbindAsync"/> (or when the
/// node goes away) <see cref="AcceptAsync"/> returns null, which tells Kestrel to stop accepting here.
/// </summary>
internal sealed class MeshConnectionListener : IConnectionListener
{
    private readonly MeshNode _node;
    private readonly MeshTcpListener _listener;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _unbound = new();
    private readonly ConcurrentDictionary<MeshConnection, byte> _open = new();
    private readonly Action<MeshConnection> _onEnded;
    private int _stopped;

    public MeshConnectionListener(MeshNode node, MeshTcpListener listener, MeshEndPoint endPoint, ILogger logger)
    {
        _node = node;
        _listener = listener;
        _logger = logger;
        EndPoint = endPoint;
        _onEnded = c => _open.TryRemove(c, out _);
    }

    public EndPoint EndPoint { get; }

    /// <summary>The node's mesh address and port.</summary>
    public IPEndPoint MeshEndPoint => _listener.LocalEndPoint;

    /// <summary>Connections accepted and not yet ended.</summary>
    public int OpenConnections => _open.Count;

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            MeshTcpStream stream;
            try
            {
                using var both = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _unbound.Token);
                stream = await _listener.AcceptAsync(both.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_unbound.IsCancellationRequested)
            {
                return null;
            }
            catch (ObjectDisposedException)
            {
                return null; // the listener was stopped, or the node disposed
            }
            catch (InvalidOperationException) when (!_node.IsRunning)
            {
                return null;
            }

            MeshPeerIdentity? peer;
            try
            {
                peer = _node.WhoIs(stream);
            }
            catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException)
            {
                stream.Abort();
                return null; // the node stopped under us
            }

            if (peer is null)
            {
                // The handshake came from a peer's allowed IPs, but that peer left before the accept: nobody to name.
                AspNetCoreLog.UnknownPeer(_logger, stream.RemoteEndPoint);
                stream.Abort();
                continue;
            }

            var connection = new MeshConnection(stream, peer, _logger, _onEnded);
            _open.TryAdd(connection, 0);
            AspNetCoreLog.Accepted(_logger, connection.ConnectionId, stream.RemoteEndPoint, peer.Name, peer.PublicKey);
            connection.Start();
            return connection;
        }
    }

    /// <summary>Stops accepting: the port is free again; connections already accepted go on.</summary>
    public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            await _unbound.CancelAsync().ConfigureAwait(false);
            await _listener.DisposeAsync().ConfigureAwait(false);
            AspNetCoreLog.Unbound(_logger, _listener.LocalEndPoint.Address, _listener.LocalEndPoint.Port);
        }
    }

    /// <summary>Unbinds, then aborts connections that are still open (Kestrel has given up on them by now).</summary>
    public async ValueTask DisposeAsync()
    {
        await UnbindAsync().ConfigureAwait(false);
        MeshConnection[] left = [.. _open.Keys];
        if (left.Length > 0)
        {
            AspNetCoreLog.AbortingLeftovers(_logger, left.Length, EndPoint.ToString()!);
            foreach (MeshConnection connection in left)
            {
                connection.Abort(new ConnectionAbortedException("The mesh listener was disposed."));
            }

            foreach (MeshConnection connection in left)
            {
                await connection.Processing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        _unbound.Dispose();
    }
}
