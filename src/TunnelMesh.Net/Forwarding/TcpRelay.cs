using System.Buffers;
using System.Net.Sockets;

namespace TunnelMesh.Net.Forwarding;

/// <summary>Receives the byte counts of a <see cref="TcpRelay"/> as they are relayed (one call per chunk).</summary>
internal interface IRelayCounters
{
    /// <summary><paramref name="bytes"/> were read from the host socket and written into the mesh connection.</summary>
    void CountSocketToMesh(int bytes);

    /// <summary><paramref name="bytes"/> were read from the mesh connection and sent on the host socket.</summary>
    void CountMeshToSocket(int bytes);
}

/// <summary>What a relay did (<see cref="TcpRelay.RunAsync"/>).</summary>
/// <param name="Graceful">Both directions reached their end of stream and the connections were closed with FIN;
/// false when either side failed or the relay was stopped, and both were reset.</param>
/// <param name="SocketToMesh">Bytes relayed from the host socket into the mesh.</param>
/// <param name="MeshToSocket">Bytes relayed from the mesh to the host socket.</param>
/// <param name="Error">The first error that ended the relay (null when it ended cleanly or was stopped).</param>
internal readonly record struct RelayResult(bool Graceful, long SocketToMesh, long MeshToSocket, Exception? Error);

/// <summary>
/// Relays bytes both ways between a host TCP socket and a mesh TCP connection, the one relay shared by
/// the SOCKS5 proxy and the port forwarder. Each direction copies through a pooled buffer; when one
/// side's read ends, sending on the other side is shut down (FIN), so half-closes pass through.
/// Once both directions are finished, both connections are closed gracefully. An error on either side,
/// or <c>stopping</c>, resets both (RST: <see cref="MeshTcpStream.Abort"/>, a zero linger on the socket),
/// so each peer learns at once that the other end is gone.
/// </summary>
internal sealed class TcpRelay
{
    /// <summary>Size of each direction's pooled buffer.</summary>
    internal const int BufferSize = 32 * 1024;

    private readonly Socket _socket;
    private readonly MeshTcpStream _mesh;
    private readonly IRelayCounters? _counters;
    private readonly CancellationTokenSource _relay;
    private long _socketToMesh;
    private long _meshToSocket;
    private Exception? _error;

    private TcpRelay(Socket socket, MeshTcpStream mesh, IRelayCounters? counters, CancellationToken stopping)
    {
        _socket = socket;
        _mesh = mesh;
        _counters = counters;
        _relay = CancellationTokenSource.CreateLinkedTokenSource(stopping);
    }

    /// <summary>
    /// Relays until both directions are finished, then closes both connections (FIN after a clean end,
    /// RST after an error or when <paramref name="stopping"/> fires). Takes ownership of both; never throws.
    /// </summary>
    public static async Task<RelayResult> RunAsync(Socket socket, MeshTcpStream mesh, IRelayCounters? counters, CancellationToken stopping)
    {
        var relay = new TcpRelay(socket, mesh, counters, stopping);
        bool graceful = false;
        try
        {
            Task<bool> up = relay.SocketToMeshAsync();
            Task<bool> down = relay.MeshToSocketAsync();
            bool upOk = await up.ConfigureAwait(false);
            bool downOk = await down.ConfigureAwait(false);
            graceful = upOk && downOk && !stopping.IsCancellationRequested;
        }
        finally
        {
            Close(socket, mesh, graceful);
            relay._relay.Dispose();
        }

        return new RelayResult(graceful, Interlocked.Read(ref relay._socketToMesh), Interlocked.Read(ref relay._meshToSocket), graceful ? null : relay._error);
    }

    /// <summary>Closes both sides: FIN when <paramref name="graceful"/>, else RST on each. Either may be null.</summary>
    public static void Close(Socket? socket, MeshTcpStream? mesh, bool graceful)
    {
        if (mesh is not null)
        {
            if (graceful)
            {
                mesh.Dispose();
            }
            else
            {
                mesh.Abort();
            }
        }

        if (socket is null)
        {
            return;
        }

        if (!graceful)
        {
            try
            {
                // An abortive close (RST), so the host side learns at once that the relay is gone.
                socket.LingerState = new LingerOption(true, 0);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // The socket is already unusable; disposing it is all that is left.
            }
        }

        socket.Dispose();
    }

    /// <summary>Host socket to mesh; at the socket's end of stream, FIN toward the mesh. False on an error (the other direction is cancelled).</summary>
    private async Task<bool> SocketToMeshAsync()
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        CancellationToken ct = _relay.Token;
        try
        {
            while (true)
            {
                int n = await _socket.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
                if (n == 0)
                {
                    await _mesh.ShutdownSendAsync(ct).ConfigureAwait(false);
                    return true;
                }

                await _mesh.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                Interlocked.Add(ref _socketToMesh, n);
                _counters?.CountSocketToMesh(n);
            }
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            await FailAsync(ex).ConfigureAwait(false);
            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Mesh to host socket; at the mesh peer's end of stream, FIN toward the socket. False on an error.</summary>
    private async Task<bool> MeshToSocketAsync()
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        CancellationToken ct = _relay.Token;
        try
        {
            while (true)
            {
                int n = await _mesh.ReadAsync(buffer, ct).ConfigureAwait(false);
                if (n == 0)
                {
                    _socket.Shutdown(SocketShutdown.Send);
                    return true;
                }

                for (int sent = 0; sent < n;)
                {
                    sent += await _socket.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, ct).ConfigureAwait(false);
                }

                Interlocked.Add(ref _meshToSocket, n);
                _counters?.CountMeshToSocket(n);
            }
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            await FailAsync(ex).ConfigureAwait(false);
            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task FailAsync(Exception ex)
    {
        if (ex is not OperationCanceledException)
        {
            Interlocked.CompareExchange(ref _error, ex, null);
        }

        await _relay.CancelAsync().ConfigureAwait(false);
    }
}
