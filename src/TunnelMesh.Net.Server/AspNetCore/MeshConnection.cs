using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Server.AspNetCore;

/// <summary>
/// One accepted mesh TCP connection as Kestrel sees it. Two loops move bytes between the
/// <see cref="MeshTcpStream"/> and a pair of pipes (as Kestrel's socket transport does): the receive loop reads
/// straight into the input pipe's memory and notices at once when the peer closes or resets (which fires
/// <see cref="ConnectionClosed"/>, so a request in progress sees <c>RequestAborted</c>); the send loop writes what
/// Kestrel produced and, once Kestrel completes its output, closes the stream (FIN after the data).
/// </summary>
internal sealed class MeshConnection : ConnectionContext,
    IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature, IConnectionLifetimeFeature,
    IConnectionEndPointFeature, IMeshPeerFeature
{
    /// <summary>Pipe memory of every mesh connection in the process; keeps up to 8 MiB of free blocks.</summary>
    internal static readonly BlockMemoryPool Pool = new(maxRetained: 2048);

    // Kestrel's defaults: MaxRequestBufferSize 1 MiB, MaxResponseBufferSize 64 KiB.
    private static readonly PipeOptions InputOptions = new(Pool, pauseWriterThreshold: 1024 * 1024, resumeWriterThreshold: 512 * 1024, minimumSegmentSize: BlockMemoryPool.BlockSize, useSynchronizationContext: false);
    private static readonly PipeOptions OutputOptions = new(Pool, pauseWriterThreshold: 64 * 1024, resumeWriterThreshold: 32 * 1024, minimumSegmentSize: BlockMemoryPool.BlockSize, useSynchronizationContext: false);
    private const int MinimumReceiveBuffer = 4096;

    private static long s_lastId;

    private readonly MeshTcpStream _stream;
    private readonly ILogger _logger;
    private readonly Action<MeshConnection> _onEnded;
    private readonly PipeWriter _received; // transport side of the input pipe
    private readonly PipeReader _toSend; // transport side of the output pipe
    private readonly DuplexPipe _application;
    private readonly CancellationTokenSource _closed = new();
    private IDictionary<object, object?>? _items;
    private Task _processing = Task.CompletedTask;
    private volatile ConnectionAbortedException? _abortReason;
    private int _streamClosed;
    private int _closedFired;

    public MeshConnection(MeshTcpStream stream, MeshPeerIdentity peer, ILogger logger, Action<MeshConnection> onEnded)
    {
        _stream = stream;
        _logger = logger;
        _onEnded = onEnded;
        Peer = peer;
        ConnectionId = "mesh-" + Interlocked.Increment(ref s_lastId).ToString("x", System.Globalization.CultureInfo.InvariantCulture);
        LocalEndPoint = stream.LocalEndPoint;
        RemoteEndPoint = stream.RemoteEndPoint;

        var input = new Pipe(InputOptions);
        var output = new Pipe(OutputOptions);
        _received = input.Writer;
        _toSend = output.Reader;
        _application = new DuplexPipe(input.Reader, output.Writer);
        Transport = _application;

        var features = new FeatureCollection();
        features.Set<IConnectionIdFeature>(this);
        features.Set<IConnectionTransportFeature>(this);
        features.Set<IConnectionItemsFeature>(this);
        features.Set<IConnectionLifetimeFeature>(this);
        features.Set<IConnectionEndPointFeature>(this);
        features.Set<IMeshPeerFeature>(this);
        Features = features;
        ConnectionClosed = _closed.Token;
    }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; }

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }

    public override IDuplexPipe Transport { get; set; }

    public override CancellationToken ConnectionClosed { get; set; }

    public MeshPeerIdentity Peer { get; }

    public Task Processing => _processing;

    public void Start() => _processing = RunAsync();

    /// <summary>Resets the connection (RST) and ends both loops; <see cref="ConnectionClosed"/> fires.</summary>
    public override void Abort(ConnectionAbortedException abortReason)
    {
        _abortReason ??= abortReason;
        if (Interlocked.Exchange(ref _streamClosed, 1) == 0)
        {
            _stream.Abort();
        }

        _toSend.CancelPendingRead();
    }

    /// <summary>
    /// Completes Kestrel's side of the pipes and waits until what was written is sent, the stream closed and both
    /// loops ended. A peer that stops reading holds this up until <see cref="Abort(ConnectionAbortedException)"/>
    /// (Kestrel aborts at its shutdown timeout; disposing the listener aborts what is left).
    /// </summary>
    public override async ValueTask DisposeAsync()
    {
        _application.Input.Complete();
        _application.Output.Complete(); // the send loop sends what is left, then closes the stream
        await _processing.ConfigureAwait(false);
        CancelClosed();
        _closed.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        try
        {
            Task receiving = ReceiveAsync();
            Task sending = SendAsync();
            await receiving.ConfigureAwait(false);
            await sending.ConfigureAwait(false);
        }
        finally
        {
            CloseStream();
            FireClosed();
            _onEnded(this);
        }
    }

    private async Task ReceiveAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                Memory<byte> memory = _received.GetMemory(MinimumReceiveBuffer);
                int n = await _stream.ReadAsync(memory).ConfigureAwait(false);
                if (n == 0)
                {
                    break; // the peer's FIN
                }

                _received.Advance(n);
                FlushResult flushed = await _received.FlushAsync().ConfigureAwait(false);
                if (flushed.IsCompleted || flushed.IsCanceled)
                {
                    break; // Kestrel stopped reading
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // After our own close or abort the read ends with an error that says nothing new.
            if (_abortReason is null && Volatile.Read(ref _streamClosed) == 0)
            {
                error = ex.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset }
                    ? new ConnectionResetException(ex.Message, ex)
                    : new ConnectionAbortedException(ex.Message, ex);
                AspNetCoreLog.ConnectionError(_logger, ConnectionId, ex);
            }
        }
        finally
        {
            await _received.CompleteAsync(_abortReason ?? error).ConfigureAwait(false);
            // Like Kestrel's socket transport: the peer closing its side ends the connection for the application.
            FireClosed();
        }
    }

    private async Task SendAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                ReadResult result = await _toSend.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    break;
                }

                ReadOnlySequence<byte> buffer = result.Buffer;
                foreach (ReadOnlyMemory<byte> segment in buffer)
                {
                    await _stream.WriteAsync(segment).ConfigureAwait(false);
                }

                _toSend.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            error = _abortReason is null && Volatile.Read(ref _streamClosed) == 0 ? new ConnectionAbortedException(ex.Message, ex) : null;
        }
        finally
        {
            await _toSend.CompleteAsync(error).ConfigureAwait(false);
            // Kestrel is done writing (or the connection failed): close, which also ends a read still waiting.
            CloseStream();
        }
    }

    private void CloseStream()
    {
        if (Interlocked.Exchange(ref _streamClosed, 1) == 0)
        {
            _stream.Dispose();
        }
    }

    private void FireClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) == 0)
        {
            // Off this thread: ConnectionClosed callbacks must not run inside the receive loop.
            ThreadPool.UnsafeQueueUserWorkItem(static c => c.CancelClosed(), this, preferLocal: false);
        }
    }

    private void CancelClosed()
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile: nobody is listening any more.
        }
        catch (AggregateException ex)
        {
            AspNetCoreLog.ClosedCallbackFailed(_logger, ConnectionId, ex);
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
