using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Pipelines.Sockets.Unofficial;

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
/// the SOCKS5 proxy and the port forwarder. The host socket is a Pipelines.Sockets.Unofficial
/// <see cref="SocketConnection"/> (its own receive and send loops on <see cref="SocketAsyncEventArgs"/>,
/// reading into and sending from pooled pipe segments). Mesh to socket, a pipe reader over
/// <see cref="MeshTcpStream"/> fills pooled segments that are copied into the socket's pipe; socket to mesh,
/// each segment of the socket's pipe is written straight into the mesh connection's send buffer
/// (<see cref="MeshTcpStream.WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/>: a pipe writer over the
/// stream would only add a copy, and measured slower). No chunk allocates. When one side's input ends, sending on the other side is shut down (FIN), so
/// half-closes pass through. Once both directions are finished, both connections are closed gracefully.
/// An error on either side, or <c>stopping</c>, resets both (RST: <see cref="MeshTcpStream.Abort"/>, a zero
/// linger on the socket), so each peer learns at once that the other end is gone.
/// </summary>
/// <remarks>
/// The pipe toward the host socket pauses its writer while any byte is unsent (pause and resume thresholds
/// of one byte): a flush therefore returns once the socket took everything, which is what lets the relay
/// close the socket without losing the tail of the data (the library offers no other signal that its send
/// loop has drained). The send loop is resumed inline by that flush (its reader scheduler is
/// <see cref="PipeScheduler.Inline"/>), so a chunk usually goes to the kernel on the relay's own thread, as the
/// socket-only relay before it did. The pipe from the socket keeps up to <see cref="ReceiveWindow"/> bytes, so
/// the socket is read while the previous chunk is being written into the mesh; the relay's read of it is
/// resumed inline by the receive loop's flush (a thread-pool thread, never the socket engine's), which saves
/// a thread hop per chunk. Both choices were measured (docs/BENCHMARKS.md, issue 10).
/// </remarks>
internal sealed class TcpRelay
{
    /// <summary>Size of the pooled segments of every pipe of the relay.</summary>
    internal const int SegmentSize = 32 * 1024;

    /// <summary>Bytes read from the host socket that may wait for the mesh before the socket is no longer read.</summary>
    internal const int ReceiveWindow = 4 * SegmentSize;

    private static readonly PipeOptions SocketSendOptions = new(
        pool: null,
        readerScheduler: PipeScheduler.Inline,
        writerScheduler: PipeScheduler.ThreadPool,
        pauseWriterThreshold: 1,
        resumeWriterThreshold: 1,
        minimumSegmentSize: SegmentSize,
        useSynchronizationContext: false);

    private static readonly PipeOptions SocketReceiveOptions = new(
        pool: null,
        readerScheduler: PipeScheduler.Inline,
        writerScheduler: PipeScheduler.ThreadPool,
        pauseWriterThreshold: ReceiveWindow,
        resumeWriterThreshold: ReceiveWindow / 2,
        minimumSegmentSize: SegmentSize,
        useSynchronizationContext: false);

    private static readonly StreamPipeReaderOptions MeshReaderOptions = new(bufferSize: SegmentSize, minimumReadSize: SegmentSize / 8, leaveOpen: true);

    private readonly SocketConnection _socket;
    private readonly MeshTcpStream _mesh;
    private readonly PipeReader _meshInput;
    private readonly IRelayCounters? _counters;
    private readonly CancellationTokenSource _relay;
    private long _socketToMesh;
    private long _meshToSocket;
    private Exception? _error;

    private TcpRelay(SocketConnection socket, MeshTcpStream mesh, IRelayCounters? counters, CancellationToken stopping)
    {
        _socket = socket;
        _mesh = mesh;
        _meshInput = PipeReader.Create(mesh, MeshReaderOptions);
        _counters = counters;
        _relay = CancellationTokenSource.CreateLinkedTokenSource(stopping);
    }

    /// <summary>
    /// Relays until both directions are finished, then closes both connections (FIN after a clean end,
    /// RST after an error or when <paramref name="stopping"/> fires). Takes ownership of both; never throws.
    /// </summary>
    public static async Task<RelayResult> RunAsync(Socket socket, MeshTcpStream mesh, IRelayCounters? counters, CancellationToken stopping)
    {
        SocketConnection connection;
        try
        {
            connection = SocketConnection.Create(socket, SocketSendOptions, SocketReceiveOptions);
        }
        catch (Exception ex)
        {
            Close(socket, mesh, graceful: false);
            return new RelayResult(false, 0, 0, ex);
        }

        var relay = new TcpRelay(connection, mesh, counters, stopping);
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
            relay.Close(graceful);
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

    /// <summary>Closes both connections and gives the pipes' pooled segments back.</summary>
    private void Close(bool graceful)
    {
        // The socket is closed before the SocketConnection is disposed: its Dispose shuts the sending half down
        // first, and a FIN ahead of the RST would show the host a clean end instead of a reset.
        Close(_socket.Socket, _mesh, graceful);
        _socket.Dispose();
        CompleteQuietly(_meshInput);
        CompleteQuietly(_socket.Input);
        CompleteQuietly(_socket.Output);
    }

    /// <summary>Host socket to mesh; at the socket's end of stream, FIN toward the mesh. False on an error (the other direction is cancelled).</summary>
    private async Task<bool> SocketToMeshAsync()
    {
        PipeReader input = _socket.Input;
        CancellationToken ct = _relay.Token;
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync(ct).ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = read.Buffer;
                if (!buffer.IsEmpty)
                {
                    int length = (int)buffer.Length;
                    foreach (ReadOnlyMemory<byte> segment in buffer)
                    {
                        await _mesh.WriteAsync(segment, ct).ConfigureAwait(false);
                    }

                    Interlocked.Add(ref _socketToMesh, length);
                    _counters?.CountSocketToMesh(length);
                }

                input.AdvanceTo(buffer.End);
                if (read.IsCompleted)
                {
                    await _mesh.ShutdownSendAsync(ct).ConfigureAwait(false);
                    return true;
                }

                ct.ThrowIfCancellationRequested();
            }
        }
        catch (Exception ex)
        {
            await FailAsync(ex).ConfigureAwait(false);
            return false;
        }
    }

    /// <summary>Mesh to host socket; at the mesh peer's end of stream, FIN toward the socket. False on an error.</summary>
    private async Task<bool> MeshToSocketAsync()
    {
        PipeReader input = _meshInput;
        PipeWriter output = _socket.Output;
        CancellationToken ct = _relay.Token;
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync(ct).ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = read.Buffer;
                if (!buffer.IsEmpty)
                {
                    int length = (int)buffer.Length;
                    Copy(buffer, output);
                    input.AdvanceTo(buffer.End);

                    // Returns once the socket's send loop took every byte (see the remarks).
                    FlushResult flushed = await output.FlushAsync(ct).ConfigureAwait(false);
                    if (flushed.IsCompleted)
                    {
                        throw new IOException("The host socket stopped sending.", new SocketException((int)_socket.SocketError));
                    }

                    Interlocked.Add(ref _meshToSocket, length);
                    _counters?.CountMeshToSocket(length);
                }
                else
                {
                    input.AdvanceTo(buffer.End);
                }

                if (read.IsCompleted)
                {
                    // Nothing is left unsent (the flush above waited for it): the send loop ends with a FIN.
                    await output.CompleteAsync().ConfigureAwait(false);
                    return true;
                }

                ct.ThrowIfCancellationRequested();
            }
        }
        catch (Exception ex)
        {
            await FailAsync(ex).ConfigureAwait(false);
            return false;
        }
    }

    private static void Copy(in ReadOnlySequence<byte> source, PipeWriter destination)
    {
        foreach (ReadOnlyMemory<byte> segment in source)
        {
            destination.Write(segment.Span);
        }
    }

    private static void CompleteQuietly(PipeReader reader)
    {
        try
        {
            reader.Complete();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or SocketException)
        {
            // A pipe adapter over a connection that was just reset; its buffers are returned either way.
        }
    }

    private static void CompleteQuietly(PipeWriter writer)
    {
        try
        {
            writer.Complete();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or SocketException)
        {
            // As above.
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
