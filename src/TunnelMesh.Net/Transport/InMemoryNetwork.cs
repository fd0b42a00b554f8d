using System.Collections.Concurrent;

namespace TunnelMesh.Net.Transport;

/// <summary>
/// A simulated network for tests and simulations: transports created here get fake endpoints
/// (10.0.0.N:port by default; no real socket is touched) and deliver to each other through a
/// per-transport queue drained by a dedicated thread, so a receiver sees the same threading as
/// with <see cref="UdpTransport"/> (never called re-entrantly from inside a Send).
/// </summary>
/// <remarks>
/// A datagram is copied on send into a buffer from the network's pool (the sender keeps its own,
/// as the contract says) at <see cref="UdpTransport.ReceiveOffset"/>, like a real receive. A datagram
/// to an endpoint nobody holds, or to a transport whose queue is full, is dropped and counted as a
/// send failure of the sender, as a socket buffer overflow would drop it.
/// </remarks>
internal sealed class InMemoryNetwork
{
    /// <summary>Default bound on datagrams queued for one transport.</summary>
    public const int DefaultQueueCapacity = 4096;

    private readonly ConcurrentDictionary<Endpoint, InMemoryTransport> _transports = new();
    private int _nextHost;

    /// <summary>Creates an empty network.</summary>
    public InMemoryNetwork(PacketBufferPool? pool = null, int queueCapacity = DefaultQueueCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(queueCapacity, 1);
        Pool = pool ?? PacketBufferPool.Shared;
        QueueCapacity = queueCapacity;
    }

    /// <summary>The pool delivered datagrams are copied into.</summary>
    public PacketBufferPool Pool { get; }

    /// <summary>Bound on datagrams queued for one transport.</summary>
    public int QueueCapacity { get; }

    /// <summary>Creates a transport at the next free address 10.0.0.N (N = 1, 2, ...) and <paramref name="port"/>.</summary>
    public InMemoryTransport CreateTransport(ushort port = 51820)
    {
        uint host = (uint)Interlocked.Increment(ref _nextHost);
        return CreateTransport(Endpoint.FromIPv4(0x0A00_0000u + host, port));
    }

    /// <summary>Creates a transport at <paramref name="endpoint"/> (any address family).</summary>
    /// <exception cref="InvalidOperationException">The endpoint is taken.</exception>
    public InMemoryTransport CreateTransport(Endpoint endpoint)
    {
        var transport = new InMemoryTransport(this, endpoint);
        if (!_transports.TryAdd(endpoint, transport))
        {
            throw new InvalidOperationException($"The endpoint {endpoint} is already in use.");
        }

        return transport;
    }

    internal bool TryGet(Endpoint endpoint, out InMemoryTransport? transport) => _transports.TryGetValue(endpoint, out transport);

    internal void Unregister(InMemoryTransport transport) =>
        _transports.TryRemove(new KeyValuePair<Endpoint, InMemoryTransport>(transport.LocalEndpoint, transport));
}

/// <summary>One endpoint of an <see cref="InMemoryNetwork"/>.</summary>
internal sealed class InMemoryTransport : IDatagramTransport
{
    private const int DeliveryBatch = 64;

    private readonly InMemoryNetwork _network;
    private readonly Queue<PacketBuffer> _queue = new();
    private readonly object _gate = new(); // a Monitor: the delivery thread waits on it
    private readonly TransportCounters _counters = new();
    private readonly PacketBuffer[] _delivery = new PacketBuffer[DeliveryBatch];
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IDatagramReceiver? _receiver;
    private Thread? _thread;
    private bool _stopping;
    private int _disposed;

    internal InMemoryTransport(InMemoryNetwork network, Endpoint localEndpoint)
    {
        _network = network;
        LocalEndpoint = localEndpoint;
    }

    /// <summary>This transport's (fake) address and port.</summary>
    public Endpoint LocalEndpoint { get; }

    /// <inheritdoc/>
    public int LocalPort => LocalEndpoint.Port;

    /// <summary>The counters so far.</summary>
    public TransportStatistics Statistics => _counters.Snapshot();

    /// <inheritdoc/>
    public void Start(IDatagramReceiver receiver)
    {
        ArgumentNullException.ThrowIfNull(receiver);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Interlocked.CompareExchange(ref _receiver, receiver, null) is not null)
        {
            throw new InvalidOperationException("The transport is already started.");
        }

        _thread = new Thread(DeliveryLoop) { IsBackground = true, Name = $"TunnelMesh in-memory {LocalEndpoint}" };
        _thread.Start();
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<PacketBuffer> batch)
    {
        int failures = 0;
        foreach (var buffer in batch)
        {
            if (Volatile.Read(ref _disposed) != 0
                || !_network.TryGet(buffer.Endpoint, out var destination)
                || !destination!.Enqueue(buffer.Span, LocalEndpoint))
            {
                failures++;
                continue;
            }

            _counters.AddSent(1, buffer.Length);
        }

        if (failures > 0)
        {
            _counters.AddSendFailures(failures);
        }
    }

    /// <summary>Stops the delivery thread, leaves the network and frees queued datagrams. Safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _network.Unregister(this);
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }

        if (_thread is not null)
        {
            await _stopped.Task.ConfigureAwait(false);
        }

        lock (_gate)
        {
            while (_queue.TryDequeue(out var buffer))
            {
                buffer.Return();
            }
        }
    }

    /// <summary>Copies a datagram into this transport's queue; false if the queue is full or closed.</summary>
    private bool Enqueue(ReadOnlySpan<byte> data, Endpoint source)
    {
        var copy = _network.Pool.Rent();
        copy.Offset = UdpTransport.ReceiveOffset;
        copy.Length = data.Length;
        copy.Endpoint = source;
        data.CopyTo(copy.Span);
        lock (_gate)
        {
            if (!_stopping && _queue.Count < _network.QueueCapacity)
            {
                _queue.Enqueue(copy);
                Monitor.Pulse(_gate);
                return true;
            }
        }

        copy.Return();
        return false;
    }

    private void DeliveryLoop()
    {
        try
        {
            while (true)
            {
                int count = 0;
                long bytes = 0;
                lock (_gate)
                {
                    while (_queue.Count == 0 && !_stopping)
                    {
                        Monitor.Wait(_gate);
                    }

                    if (_stopping)
                    {
                        return;
                    }

                    while (count < _delivery.Length && _queue.TryDequeue(out var buffer))
                    {
                        _delivery[count++] = buffer;
                        bytes += buffer.Length;
                    }
                }

                _counters.AddReceived(count, bytes);
                try
                {
                    _receiver!.OnDatagrams(_delivery.AsSpan(0, count));
                }
#pragma warning disable CA1031 // as with UDP: a receiver bug is counted, the loop goes on
                catch (Exception)
#pragma warning restore CA1031
                {
                    _counters.AddReceiveError();
                }

                _delivery.AsSpan(0, count).Clear();
            }
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }
}
