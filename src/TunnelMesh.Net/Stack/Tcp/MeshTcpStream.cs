using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using TunnelMesh.Net.Stack.Tcp;

namespace TunnelMesh.Net;

/// <summary>
/// A TCP connection over the mesh: a <see cref="Stream"/> and an <see cref="IDuplexPipe"/>
/// (use one or the other for each direction, not both at once).
/// </summary>
/// <remarks>
/// <para>Reads return what has arrived (at least one byte), or 0 once the peer has closed its side
/// and everything was read. Writes return once the data is in the connection's send buffer; they
/// wait while it is full, which is how a slow peer slows the writer down. One read and one write
/// may be in progress at the same time.</para>
/// <para>Errors are <see cref="IOException"/>s wrapping a <see cref="System.Net.Sockets.SocketException"/>
/// (<c>ConnectionReset</c> when the peer reset, <c>TimedOut</c> when it stopped acknowledging), as
/// <see cref="System.Net.Sockets.NetworkStream"/> reports them.</para>
/// <para>Disposing closes gracefully (FIN after the data already written; the node finishes the
/// exchange in the background), or resets the connection if received data was never read.
/// <see cref="Abort"/> resets at once. Disposing twice is harmless.</para>
/// </remarks>
public sealed class MeshTcpStream : Stream, IDuplexPipe
{
    private readonly TcpConnection _connection;
    private PipeReader? _input;
    private PipeWriter? _output;
    private int _disposed;

    internal MeshTcpStream(TcpConnection connection)
    {
        _connection = connection;
        var tuple = connection.Tuple;
        LocalEndPoint = new IPEndPoint(new IPAddress(BinaryPrimitives.ReverseEndianness(tuple.LocalAddress)), tuple.LocalPort);
        RemoteEndPoint = new IPEndPoint(new IPAddress(BinaryPrimitives.ReverseEndianness(tuple.RemoteAddress)), tuple.RemotePort);
    }

    /// <summary>This node's address and port.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>The peer's address and port.</summary>
    public IPEndPoint RemoteEndPoint { get; }

    /// <summary>Whether Nagle's algorithm is off (small writes leave at once instead of waiting for outstanding data to be acknowledged).</summary>
    public bool NoDelay
    {
        get => _connection.NoDelay;
        set => _connection.NoDelay = value;
    }

    internal TcpConnection Connection => _connection;

    /// <inheritdoc/>
    public PipeReader Input => _input ??= PipeReader.Create(this, new StreamPipeReaderOptions(leaveOpen: true));

    /// <inheritdoc/>
    public PipeWriter Output => _output ??= PipeWriter.Create(this, new StreamPipeWriterOptions(leaveOpen: true));

    /// <inheritdoc/>
    public override bool CanRead => Volatile.Read(ref _disposed) == 0;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override bool CanWrite => Volatile.Read(ref _disposed) == 0;

    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc/>
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>Half-close: sends FIN after the data already written; reading goes on until the peer closes.</summary>
    public ValueTask ShutdownSendAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        _connection.ShutdownSend();
        return ValueTask.CompletedTask;
    }

    /// <summary>Resets the connection (sends RST) and discards unsent and unread data.</summary>
    public void Abort()
    {
        _connection.Abort();
        Volatile.Write(ref _disposed, 1);
    }

    /// <inheritdoc/>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _connection.ReadAsync(buffer, cancellationToken);
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _connection.WriteAsync(buffer, cancellationToken);
    }

    /// <inheritdoc/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override int Read(Span<byte> buffer)
    {
        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            int n = ReadAsync(rented.AsMemory(0, buffer.Length)).AsTask().GetAwaiter().GetResult();
            rented.AsSpan(0, n).CopyTo(buffer);
            return n;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc/>
    public override void Flush()
    {
    }

    /// <inheritdoc/>
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _connection.CloseFromApplication();
        }

        base.Dispose(disposing);
    }
}
