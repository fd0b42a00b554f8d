using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using TunnelMesh.Net.Stack;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net;

/// <summary>
/// A UDP socket on the mesh, bound to one port of the node's mesh address. Datagrams are sent and
/// received over WireGuard; no operating-system socket is involved.
/// </summary>
/// <remarks>
/// <para>Received datagrams wait in a bounded queue (256 by default); when it is full, new ones are
/// dropped and counted, as a kernel socket buffer would. Each datagram is copied once, into the
/// buffer given to <see cref="ReceiveFromAsync"/>.</para>
/// <para>Payloads larger than the node's MTU allows are sent as IPv4 fragments; the largest payload
/// is 65507 bytes.</para>
/// <para>Disposing closes the port (it can be bound again at once), discards queued datagrams, and
/// makes pending and later receives and sends throw <see cref="ObjectDisposedException"/>.
/// Disposing twice is harmless.</para>
/// <para>Several receives may wait at once; each datagram goes to one of them. The socket is
/// safe to use from several threads.</para>
/// </remarks>
public sealed class MeshUdpSocket : IAsyncDisposable
{
    private readonly NetStack _stack;
    private readonly Channel<QueuedDatagram> _queue;
    private int _disposed;

    internal MeshUdpSocket(NetStack stack, ushort port, int queueCapacity)
    {
        _stack = stack;
        Port = port;
        _queue = Channel.CreateBounded<QueuedDatagram>(new BoundedChannelOptions(queueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full; the stack counts the drop.
            SingleReader = false,
            SingleWriter = false,
            AllowSynchronousContinuations = false,
        });
        Span<byte> address = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(address, stack.Address);
        LocalEndPoint = new IPEndPoint(new IPAddress(address), port);
    }

    /// <summary>The node's mesh address and the bound port.</summary>
    public IPEndPoint LocalEndPoint { get; }

    internal ushort Port { get; }

    /// <summary>
    /// Sends <paramref name="payload"/> as one datagram to <paramref name="destination"/> (an IPv4
    /// mesh address). The datagram is handed to the WireGuard layer before this returns; as with
    /// UDP, delivery is not guaranteed.
    /// </summary>
    /// <exception cref="ArgumentException">The destination is not IPv4, its port is 0, or the payload is over 65507 bytes.</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    public ValueTask SendToAsync(ReadOnlyMemory<byte> payload, IPEndPoint destination, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (destination.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException("Only IPv4 mesh addresses are supported for now.", nameof(destination));
        }

        if (destination.Port == 0)
        {
            throw new ArgumentException("The destination port must not be 0.", nameof(destination));
        }

        if (ct.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(ct);
        }

        Span<byte> address = stackalloc byte[4];
        destination.Address.TryWriteBytes(address, out _);
        _stack.SendUdp(Port, payload.Span, BinaryPrimitives.ReadUInt32BigEndian(address), (ushort)destination.Port);
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Waits for a datagram and copies it into <paramref name="buffer"/>. If the buffer is smaller than
    /// the datagram, the rest is discarded (as a Linux UDP socket does) and
    /// <see cref="MeshUdpReceiveResult.ReceivedBytes"/> is the number of bytes copied.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The socket was closed before or while waiting.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled while waiting.</exception>
    public ValueTask<MeshUdpReceiveResult> ReceiveFromAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_queue.Reader.TryRead(out var datagram))
        {
            return new ValueTask<MeshUdpReceiveResult>(CopyOut(datagram, buffer.Span));
        }

        return ReceiveSlowAsync(buffer, ct);
    }

    /// <summary>Closes the socket: frees the port, discards queued datagrams, fails pending receives with <see cref="ObjectDisposedException"/>.</summary>
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return ValueTask.CompletedTask;
        }

        _stack.Unbind(this);
        _queue.Writer.TryComplete();
        while (_queue.Reader.TryRead(out var datagram))
        {
            datagram.Payload.Return();
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Queues a received datagram (the buffer's data is the UDP payload); false when full or closed, and the caller keeps the buffer.</summary>
    internal bool TryEnqueue(PacketBuffer payload, uint source, ushort sourcePort) =>
        Volatile.Read(ref _disposed) == 0 && _queue.Writer.TryWrite(new QueuedDatagram(payload, source, sourcePort));

    private static MeshUdpReceiveResult CopyOut(QueuedDatagram datagram, Span<byte> destination)
    {
        var data = datagram.Payload.Span;
        int count = Math.Min(data.Length, destination.Length);
        data[..count].CopyTo(destination);
        datagram.Payload.Return();
        Span<byte> address = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(address, datagram.Source);
        return new MeshUdpReceiveResult(count, new IPEndPoint(new IPAddress(address), datagram.SourcePort));
    }

    private async ValueTask<MeshUdpReceiveResult> ReceiveSlowAsync(Memory<byte> buffer, CancellationToken ct)
    {
        QueuedDatagram datagram;
        try
        {
            datagram = await _queue.Reader.ReadAsync(ct).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new ObjectDisposedException(GetType().FullName);
        }

        return CopyOut(datagram, buffer.Span);
    }

    private readonly record struct QueuedDatagram(PacketBuffer Payload, uint Source, ushort SourcePort);
}

/// <summary>The outcome of <see cref="MeshUdpSocket.ReceiveFromAsync"/>.</summary>
/// <param name="ReceivedBytes">Bytes copied into the caller's buffer.</param>
/// <param name="RemoteEndPoint">The sender's mesh address and port.</param>
public readonly record struct MeshUdpReceiveResult(int ReceivedBytes, IPEndPoint RemoteEndPoint);
