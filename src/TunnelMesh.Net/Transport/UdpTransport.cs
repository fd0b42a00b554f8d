using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace TunnelMesh.Net.Transport;

/// <summary>
/// The UDP transport: one socket, a dedicated receive thread that blocks in a batched receive and
/// pushes each batch to the receiver, and synchronous batched sends. Allocation-free per datagram in
/// steady state on both paths.
/// </summary>
/// <remarks>
/// <para>
/// On Linux, batches go through <c>recvmmsg</c> (with <c>MSG_WAITFORONE</c>: block for the first
/// datagram, take whatever else is queued) and <c>sendmmsg</c> on the socket's descriptor, pointing
/// straight into the pinned <see cref="PacketBuffer.Array"/>s. Elsewhere (or when
/// <see cref="UdpTransportOptions.UseNativeBatching"/> is off) the receive thread blocks in
/// <see cref="Socket.ReceiveFrom(Span{byte}, SocketFlags, SocketAddress)"/> and then drains what
/// <see cref="Socket.Available"/> reports, and sends use
/// <see cref="Socket.SendTo(ReadOnlySpan{byte}, SocketFlags, SocketAddress)"/>.
/// </para>
/// <para>
/// A received datagram's data starts at <see cref="ReceiveOffset"/> = <see cref="PacketBuffer.HeadRoom"/> − 16:
/// the receiver decrypts a WireGuard data message in place and trims its 16-byte header, which leaves
/// the inner IP packet exactly where a freshly rented buffer's data starts, with the standard head
/// and tail room, so it can be forwarded and re-encrypted in place.
/// </para>
/// <para>
/// Sends are serialised by a lock (one set of native headers); a full socket buffer blocks the caller,
/// which is the back-pressure. Errors never throw: a datagram that cannot be sent is dropped and
/// counted; receive errors such as ECONNREFUSED (from an ICMP port unreachable) are counted and the
/// loop goes on.
/// </para>
/// </remarks>
internal sealed class UdpTransport : IDatagramTransport
{
    /// <summary>Where received data starts in a buffer (see the remarks).</summary>
    public const int ReceiveOffset = PacketBuffer.HeadRoom - 16;

    // SIO_UDP_CONNRESET: stop Windows reporting ICMP port unreachable as WSAECONNRESET on receive.
    private const int SioUdpConnReset = unchecked((int)0x9800000C);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private readonly int _fd;
    private readonly bool _ipv6Socket;
    private readonly PacketBufferPool _pool;
    private readonly TransportCounters _counters;
    private readonly int _batchSize;
    private readonly PacketBuffer[] _receiveBuffers;
    private readonly PacketBuffer[] _deliveryBuffers;
    private readonly NativeMessageBatch? _receiveBatch;
    private readonly NativeMessageBatch? _sendBatch;
    private readonly SocketAddress _sendAddress;
    private readonly Lock _sendGate = new();
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IDatagramReceiver? _receiver;
    private Thread? _thread;
    private volatile bool _stopping;
    private bool _sendClosed;
    private const int MaxSegments = 64;          // the kernel's UDP_MAX_SEGMENTS on older kernels
    private const int MaxGroSegments = 128;      // more than the kernel coalesces into one message (UDP_GRO_CNT_MAX 64)
    private const int MaxSegmentedBytes = 65000; // one UDP send carries at most 65,507 bytes
    private readonly bool _receiveOffload; // UDP GRO: the kernel may hand over several datagrams as one
    private readonly int[] _segmentSizes; // per received message: its GRO segment size, 0 for one datagram
    private long _coalescedMessages;
    private readonly PacketBuffer[] _segmentScratch = new PacketBuffer[MaxGroSegments];
    private bool _segmentation; // UDP GSO: runs of equal datagrams to one endpoint go as one send
    private int _disposed;

    /// <summary>Binds the socket now (so <see cref="LocalPort"/> is known); receiving begins at <see cref="Start"/>.</summary>
    /// <exception cref="SocketException">The address or port cannot be bound.</exception>
    public UdpTransport(UdpTransportOptions? options = null)
    {
        options ??= new UdpTransportOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.BatchSize, 1024);
        _pool = options.Pool ?? PacketBufferPool.Shared;
        _counters = new TransportCounters(options.Drops);
        _batchSize = options.BatchSize;
        _socket = CreateSocket(options);
        _ipv6Socket = _socket.AddressFamily == AddressFamily.InterNetworkV6;
        _sendAddress = new SocketAddress(_socket.AddressFamily);
        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
        _fd = (int)_socket.SafeHandle.DangerousGetHandle();

        if (options.UseNativeBatching && OperatingSystem.IsLinux() && NativeBatchingWorks(_fd))
        {
            _receiveBatch = new NativeMessageBatch(_batchSize);
            _sendBatch = new NativeMessageBatch(_batchSize);
            _segmentation = options.UseSegmentationOffload && SegmentationOffloadWorks(_socket);
            _receiveOffload = options.UseReceiveOffload && TryEnableReceiveOffload(_socket);
        }

        _receiveBuffers = new PacketBuffer[_batchSize];
        _deliveryBuffers = new PacketBuffer[_batchSize];
        _segmentSizes = new int[_batchSize];
        for (int i = 0; i < _receiveBuffers.Length; i++)
        {
            _receiveBuffers[i] = _pool.Rent();
        }
    }

    /// <inheritdoc/>
    public int LocalPort => LocalEndPoint.Port;

    /// <summary>The bound local endpoint (<c>[::]:port</c> for a dual-mode socket).</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Whether the socket is IPv6 (dual-mode when bound to <c>[::]</c>) rather than IPv4-only.</summary>
    public bool IsIPv6Socket => _ipv6Socket;

    /// <summary>Whether the kernel may coalesce received datagrams (Linux UDP_GRO); they are cut apart again before delivery.</summary>
    public bool IsReceiveCoalescing => _receiveOffload;

    /// <summary>Received messages that held more than one datagram (tests, diagnostics).</summary>
    internal long CoalescedMessages => Interlocked.Read(ref _coalescedMessages);

    /// <summary>Whether runs of datagrams go out through UDP segmentation offload (Linux UDP_SEGMENT).</summary>
    public bool IsSegmenting => _segmentation;

    /// <summary>Whether batches go through <c>recvmmsg</c>/<c>sendmmsg</c>.</summary>
    public bool IsNativeBatching => _receiveBatch is not null;

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

        _thread = new Thread(IsNativeBatching ? NativeReceiveLoop : ManagedReceiveLoop)
        {
            IsBackground = true,
            Name = $"TunnelMesh UDP :{LocalPort}",
        };
        _thread.Start();
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<PacketBuffer> batch)
    {
        if (batch.IsEmpty)
        {
            return;
        }

        lock (_sendGate)
        {
            if (_sendClosed)
            {
                _counters.AddSendFailures(batch.Length);
            }
            else if (_sendBatch is not null && _segmentation && batch.Length > 1)
            {
                SendSegmented(batch, _sendBatch);
            }
            else if (_sendBatch is not null)
            {
                SendNative(batch, _sendBatch);
            }
            else
            {
                SendManaged(batch);
            }
        }
    }

    /// <summary>Stops the receive thread, closes the socket and returns the receive buffers. Safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping = true;
        lock (_sendGate)
        {
            _sendClosed = true;
        }

        // shutdown() wakes a thread blocked in a receive on Linux (the receive returns 0); it also
        // reports ENOTCONN for an unconnected UDP socket, which is expected.
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }

        if (!IsNativeBatching)
        {
            // The managed path: closing the socket aborts a blocking ReceiveFrom on every platform.
            _socket.Dispose();
        }

        bool threadStopped = true;
        if (_thread is not null)
        {
            try
            {
                await _stopped.Task.WaitAsync(StopTimeout).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                threadStopped = false;
            }
        }

        _socket.Dispose();
        if (threadStopped)
        {
            // Only now is nobody using the native headers or the receive buffers.
            _receiveBatch?.Dispose();
            _sendBatch?.Dispose();
            foreach (var buffer in _receiveBuffers)
            {
                buffer.Return();
            }
        }
    }

    private static Socket CreateSocket(UdpTransportOptions options)
    {
        var bind = options.BindAddress;
        Socket? socket = null;

        // No address, or [::] (MeshNodeOptions.ListenAddress's default): one dual-stack socket for IPv4
        // and IPv6 peers. An IPv6 socket bound to [::] is IPv6-only unless DualMode is set, and then
        // every IPv4 handshake would meet a closed port.
        bool dualStack = bind is null || bind.Equals(IPAddress.IPv6Any);
        if (dualStack && Socket.OSSupportsIPv6)
        {
            try
            {
                socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
                socket.Bind(new IPEndPoint(IPAddress.IPv6Any, options.Port));
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.AddressFamilyNotSupported or SocketError.AddressNotAvailable or SocketError.ProtocolNotSupported)
            {
                // No usable IPv6 (e.g. disabled in the kernel): fall back to IPv4 only. Any other
                // failure (the port is taken) is the caller's to see.
                socket?.Dispose();
                socket = null;
            }
            catch
            {
                socket?.Dispose();
                throw;
            }
        }

        if (socket is null)
        {
            // No usable IPv6: IPv4 alone when any address was asked for.
            bind = dualStack ? IPAddress.Any : bind!;
            socket = new Socket(bind.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                socket.Bind(new IPEndPoint(bind, options.Port));
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        socket.Blocking = true;
        TrySetBufferSize(socket, SocketOptionName.ReceiveBuffer, options.ReceiveBufferSize);
        TrySetBufferSize(socket, SocketOptionName.SendBuffer, options.SendBufferSize);
        if (OperatingSystem.IsWindows())
        {
            socket.IOControl(SioUdpConnReset, [0, 0, 0, 0], null);
        }

        return socket;
    }

    private static void TrySetBufferSize(Socket socket, SocketOptionName option, int size)
    {
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, option, size);
        }
        catch (SocketException)
        {
            // The kernel refused the size; it keeps its default, which still works.
        }
    }

    private static unsafe bool NativeBatchingWorks(int fd)
    {
        try
        {
            // A batch of zero messages sends nothing; it only proves that the entry point exists.
            return LinuxSocketInterop.SendMmsg(fd, null, 0, 0) == 0;
        }
        catch (DllNotFoundException)
        {
            return false;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }

    private unsafe void NativeReceiveLoop()
    {
        var batch = _receiveBatch!;
        var buffers = _receiveBuffers;
        bool addedRef = false;
        try
        {
            // Keeps the descriptor from being closed (and its number reused) while we block on it.
            _socket.SafeHandle.DangerousAddRef(ref addedRef);
            while (!_stopping)
            {
                for (int i = 0; i < buffers.Length; i++)
                {
                    var array = buffers[i].Array;
                    batch.SetBuffer(i, array, ReceiveOffset, array.Length - ReceiveOffset);
                    batch.PrepareReceive(i);
                }

                int received = LinuxSocketInterop.RecvMmsg(_fd, batch.Headers, (uint)buffers.Length, LinuxSocketInterop.MsgWaitForOne, 0);
                if (_stopping)
                {
                    break;
                }

                if (received < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno is LinuxSocketInterop.EBadF or LinuxSocketInterop.ENotSock or LinuxSocketInterop.EFault or LinuxSocketInterop.EInval)
                    {
                        break; // the socket is gone: nothing more will arrive
                    }

                    if (errno != LinuxSocketInterop.EIntr)
                    {
                        _counters.AddReceiveError(); // ECONNREFUSED and friends: keep going
                    }

                    continue;
                }

                int good = 0;
                for (int i = 0; i < received; i++)
                {
                    // A message without a source (after shutdown) or cut short is not a datagram to deliver.
                    if ((batch.MessageFlags(i) & LinuxSocketInterop.MsgTrunc) != 0 || !batch.TryReadSource(i, out var source))
                    {
                        _counters.AddReceiveError();
                        continue;
                    }

                    var buffer = buffers[i];
                    buffer.Offset = ReceiveOffset;
                    buffer.Length = batch.MessageLength(i);
                    buffer.Endpoint = source;
                    _segmentSizes[good] = _receiveOffload ? batch.ReadSegmentSize(i) : 0;
                    (buffers[good], buffers[i]) = (buffer, buffers[good]);
                    good++;
                }

                Deliver(good);
            }
        }
        finally
        {
            if (addedRef)
            {
                _socket.SafeHandle.DangerousRelease();
            }

            _stopped.TrySetResult();
        }
    }

    private void ManagedReceiveLoop()
    {
        var buffers = _receiveBuffers;
        var address = new SocketAddress(_socket.AddressFamily);
        try
        {
            while (!_stopping)
            {
                int count = 0;
                do
                {
                    var buffer = buffers[count];
                    int length;
                    try
                    {
                        length = _socket.ReceiveFrom(buffer.Array.AsSpan(ReceiveOffset), SocketFlags.None, address);
                    }
                    catch (SocketException) when (!_stopping)
                    {
                        _counters.AddReceiveError(); // e.g. ICMP port unreachable reported on the socket
                        break;
                    }

                    if (_stopping)
                    {
                        return;
                    }

                    if (!Endpoint.TryFromSocketAddress(address, out var source))
                    {
                        _counters.AddReceiveError();
                        break;
                    }

                    buffer.Offset = ReceiveOffset;
                    buffer.Length = length;
                    buffer.Endpoint = source;
                    count++;
                }
                while (count < buffers.Length && _socket.Available > 0);

                Deliver(count);
            }
        }
        catch (Exception e) when (_stopping && e is SocketException or ObjectDisposedException)
        {
            // Closed by DisposeAsync.
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    /// <summary>
    /// Replaces the first <paramref name="count"/> receive buffers with fresh ones from the pool and
    /// hands the filled ones to the receiver, which owns them from then on, even if it throws. A
    /// message the kernel coalesced (UDP GRO: a segment size in <c>_segmentSizes</c>) is cut back
    /// into its datagrams first: the first stays in its buffer, the others are copied into
    /// buffers from the pool, in order. They go to the receiver in slices of one receive batch, so
    /// at most one slice of pool buffers is out at a time (the receiver returns them before it
    /// returns) and what it sends in answer (ACKs) leaves between slices.
    /// </summary>
    private void Deliver(int count)
    {
        var buffers = _receiveBuffers;
        int n = 0;
        for (int i = 0; i < count; i++)
        {
            var buffer = buffers[i];
            buffers[i] = _pool.Rent();
            int size = _segmentSizes[i];
            int total = buffer.Length;
            if (size <= 0 || total <= size)
            {
                n = AddToSlice(buffer, n);
                continue;
            }

            // Copy the later datagrams out before the first is handed over: once delivered, the
            // receiver decrypts it in place and returns its buffer to the pool.
            _coalescedMessages++;
            int copies = 0;
            for (int offset = size; offset < total && copies < _segmentScratch.Length; offset += size)
            {
                int length = Math.Min(size, total - offset);
                var segment = _pool.Rent();
                segment.Offset = ReceiveOffset;
                segment.Length = length;
                segment.Endpoint = buffer.Endpoint;
                buffer.Array.AsSpan(ReceiveOffset + offset, length).CopyTo(segment.Array.AsSpan(ReceiveOffset));
                _segmentScratch[copies++] = segment;
            }

            buffer.Length = size;
            n = AddToSlice(buffer, n);
            for (int k = 0; k < copies; k++)
            {
                n = AddToSlice(_segmentScratch[k], n);
                _segmentScratch[k] = null!;
            }
        }

        DeliverSlice(n);
    }

    private int AddToSlice(PacketBuffer datagram, int n)
    {
        if (n == _deliveryBuffers.Length)
        {
            DeliverSlice(n);
            n = 0;
        }

        _deliveryBuffers[n] = datagram;
        return n + 1;
    }

    /// <summary>Hands the first <paramref name="n"/> delivery buffers to the receiver, which owns them from then on, even if it throws.</summary>
    private void DeliverSlice(int n)
    {
        if (n == 0)
        {
            return;
        }

        var delivery = _deliveryBuffers;
        long bytes = 0;
        for (int i = 0; i < n; i++)
        {
            bytes += delivery[i].Length;
        }

        _counters.AddReceived(n, bytes);
        try
        {
            _receiver!.OnDatagrams(delivery.AsSpan(0, n));
        }
#pragma warning disable CA1031 // a receiver bug must not make the node deaf: count it and keep receiving
        catch (Exception)
#pragma warning restore CA1031
        {
            _counters.AddReceiveError();
        }

        delivery.AsSpan(0, n).Clear();
    }

    private static bool TryEnableReceiveOffload(Socket socket)
    {
        try
        {
            Span<byte> on = stackalloc byte[4];
            BitConverter.TryWriteBytes(on, 1);
            socket.SetRawSocketOption(LinuxSocketInterop.SolUdp, LinuxSocketInterop.UdpGro, on);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    // Called under _sendGate.
    private unsafe void SendNative(ReadOnlySpan<PacketBuffer> batch, NativeMessageBatch headers)
    {
        int next = 0;
        while (next < batch.Length)
        {
            int count = 0;
            int failures = 0;
            while (count < headers.Capacity && next < batch.Length)
            {
                var buffer = batch[next++];
                if (!headers.TryWriteDestination(count, buffer.Endpoint, _ipv6Socket))
                {
                    failures++;
                    continue;
                }

                headers.SetBuffer(count, buffer.Array, buffer.Offset, buffer.Length);
                count++;
            }

            int done = 0;
            while (done < count)
            {
                int sent = LinuxSocketInterop.SendMmsg(_fd, headers.Headers + done, (uint)(count - done), 0);
                if (sent <= 0)
                {
                    if (sent < 0 && Marshal.GetLastPInvokeError() == LinuxSocketInterop.EIntr)
                    {
                        continue;
                    }

                    // The first remaining datagram failed (bad address, too big, ...): drop it, go on.
                    failures++;
                    done++;
                    continue;
                }

                long bytes = 0;
                for (int i = done; i < done + sent; i++)
                {
                    bytes += headers.BufferLength(i);
                }

                _counters.AddSent(sent, bytes);
                done += sent;
            }

            if (failures > 0)
            {
                _counters.AddSendFailures(failures);
            }
        }
    }

    // Called under _sendGate. Consecutive datagrams to one endpoint, all of one size but the last
    // (which may be shorter), go as one message with a UDP_SEGMENT control message: the kernel
    // passes the run through its stack once and cuts it into datagrams at the end.
    private unsafe void SendSegmented(ReadOnlySpan<PacketBuffer> batch, NativeMessageBatch headers)
    {
        Span<int> datagrams = stackalloc int[headers.Capacity];
        Span<long> bytes = stackalloc long[headers.Capacity];
        int next = 0;
        while (next < batch.Length)
        {
            int messages = 0;
            int iov = 0;
            int failures = 0;
            while (next < batch.Length && messages < headers.Capacity && iov < headers.Capacity)
            {
                var first = batch[next];
                if (!headers.TryWriteDestination(messages, first.Endpoint, _ipv6Socket))
                {
                    failures++;
                    next++;
                    continue;
                }

                int firstIov = iov;
                int size = first.Length;
                long total = 0;
                while (next < batch.Length && iov < headers.Capacity && iov - firstIov < MaxSegments)
                {
                    var buffer = batch[next];
                    if (iov > firstIov && (buffer.Endpoint != first.Endpoint || buffer.Length > size || total + buffer.Length > MaxSegmentedBytes))
                    {
                        break;
                    }

                    headers.SetBuffer(iov++, buffer.Array, buffer.Offset, buffer.Length);
                    total += buffer.Length;
                    next++;
                    if (buffer.Length < size)
                    {
                        break; // a shorter datagram can only end a run
                    }
                }

                headers.SetSegmented(messages, firstIov, iov - firstIov, size);
                datagrams[messages] = iov - firstIov;
                bytes[messages] = total;
                messages++;
            }

            int done = 0;
            while (done < messages)
            {
                int sent = LinuxSocketInterop.SendMmsg(_fd, headers.Headers + done, (uint)(messages - done), 0);
                if (sent <= 0)
                {
                    int error = Marshal.GetLastPInvokeError();
                    if (sent < 0 && error == LinuxSocketInterop.EIntr)
                    {
                        continue;
                    }

                    if (sent < 0 && datagrams[done] > 1 && error is LinuxSocketInterop.EIo or LinuxSocketInterop.EInval)
                    {
                        _segmentation = false; // the path cannot segment: plain datagrams from now on
                    }

                    failures += datagrams[done];
                    done++;
                    continue;
                }

                for (int i = done; i < done + sent; i++)
                {
                    _counters.AddSent(datagrams[i], bytes[i]);
                }

                done += sent;
            }

            // Leave the headers as the plain path expects them: one iovec each, no control data.
            for (int i = 0; i < messages; i++)
            {
                headers.SetSegmented(i, i, 1, 0);
            }

            if (failures > 0)
            {
                _counters.AddSendFailures(failures);
            }
        }
    }

    private static bool SegmentationOffloadWorks(Socket socket)
    {
        try
        {
            Span<byte> value = stackalloc byte[4];
            socket.GetRawSocketOption(LinuxSocketInterop.SolUdp, LinuxSocketInterop.UdpSegment, value);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    // Called under _sendGate.
    private void SendManaged(ReadOnlySpan<PacketBuffer> batch)
    {
        int failures = 0;
        foreach (var buffer in batch)
        {
            if (!_ipv6Socket && !buffer.Endpoint.IsIPv4)
            {
                failures++;
                continue;
            }

            buffer.Endpoint.WriteSocketAddress(_sendAddress);
            try
            {
                int sent = _socket.SendTo(buffer.Span, SocketFlags.None, _sendAddress);
                _counters.AddSent(1, sent);
            }
            catch (SocketException)
            {
                failures++;
            }
            catch (ObjectDisposedException)
            {
                failures++;
            }
        }

        if (failures > 0)
        {
            _counters.AddSendFailures(failures);
        }
    }
}
