using System.Buffers;
using System.Net.Sockets;
using TunnelMesh.Net.Forwarding;

namespace TunnelMesh.Net.ForwardBench;

/// <summary>
/// The baseline: the relay the forwarder ran before issue 10 (plain <see cref="Socket"/> calls, one pooled
/// 32 KiB buffer per direction, read then write), kept here only so both relays are measured in the same run.
/// Same contract as <see cref="TcpRelay.RunAsync"/>: FIN passes through, both closed with FIN after a clean end,
/// RST on both after an error.
/// </summary>
internal sealed class SocketRelay
{
    private const int BufferSize = 32 * 1024;

    private readonly Socket _socket;
    private readonly MeshTcpStream _mesh;
    private readonly IRelayCounters? _counters;
    private readonly CancellationTokenSource _relay;
    private long _socketToMesh;
    private long _meshToSocket;
    private Exception? _error;

    private SocketRelay(Socket socket, MeshTcpStream mesh, IRelayCounters? counters, CancellationToken stopping)
    {
        _socket = socket;
        _mesh = mesh;
        _counters = counters;
        _relay = CancellationTokenSource.CreateLinkedTokenSource(stopping);
    }

    public static async Task<RelayResult> RunAsync(Socket socket, MeshTcpStream mesh, IRelayCounters? counters, CancellationToken stopping)
    {
        var relay = new SocketRelay(socket, mesh, counters, stopping);
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
            TcpRelay.Close(socket, mesh, graceful);
            relay._relay.Dispose();
        }

        return new RelayResult(graceful, relay._socketToMesh, relay._meshToSocket, graceful ? null : relay._error);
    }

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
