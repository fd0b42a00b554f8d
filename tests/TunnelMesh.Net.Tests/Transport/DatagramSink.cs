using System.Collections.Concurrent;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Tests.Transport;

/// <summary>
/// A receiver for tests: optionally copies each datagram out, returns every buffer to its pool, and
/// releases a semaphore once per datagram so a test can wait for arrivals with a timeout.
/// </summary>
internal sealed class DatagramSink : IDatagramReceiver, IDisposable
{
    private readonly bool _keep;
    private readonly SemaphoreSlim _arrivals = new(0);
    private long _count;

    private readonly bool _scribble;

    /// <param name="keep">Keep a copy of each datagram in <see cref="Received"/>.</param>
    /// <param name="scribble">Overwrite each buffer's whole array before returning it, as a receiver
    /// that decrypts in place and reuses buffers would: catches a sender of buffers that still
    /// reads them after handing them over.</param>
    public DatagramSink(bool keep = true, bool scribble = false)
    {
        _keep = keep;
        _scribble = scribble;
    }

    public ConcurrentQueue<(byte[] Data, Endpoint Source)> Received { get; } = new();

    public long Count => Interlocked.Read(ref _count);

    public int LastThreadId { get; private set; }

    /// <summary>The receive thread's own allocation counter, read at the end of the last batch.</summary>
    public long ReceiveThreadAllocatedBytes => Interlocked.Read(ref _receiveThreadAllocated);

    private long _receiveThreadAllocated;

    public void OnDatagrams(ReadOnlySpan<PacketBuffer> batch)
    {
        LastThreadId = Environment.CurrentManagedThreadId;
        foreach (var buffer in batch)
        {
            if (_keep)
            {
                Received.Enqueue((buffer.Span.ToArray(), buffer.Endpoint));
            }

            if (_scribble)
            {
                buffer.Array.AsSpan().Fill(0xEE);
            }

            buffer.Return();
        }

        Interlocked.Add(ref _count, batch.Length);
        Interlocked.Exchange(ref _receiveThreadAllocated, GC.GetAllocatedBytesForCurrentThread());
        _arrivals.Release(batch.Length);
    }

    /// <summary>Waits for <paramref name="count"/> more datagrams (allocation-free when they are already there).</summary>
    public bool WaitFor(int count, TimeSpan timeout)
    {
        for (int i = 0; i < count; i++)
        {
            if (!_arrivals.Wait(timeout))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True if nothing more arrives within <paramref name="quiet"/>.</summary>
    public bool NothingMoreWithin(TimeSpan quiet) => !_arrivals.Wait(quiet);

    public void Dispose() => _arrivals.Dispose();
}

/// <summary>A fact that is skipped, with the reason, on machines without an IPv6 loopback.</summary>
public sealed class IPv6LoopbackFactAttribute : FactAttribute
{
    public IPv6LoopbackFactAttribute()
    {
        if (!LoopbackSupport.IPv6Available)
        {
            Skip = "No IPv6 loopback here: Socket.OSSupportsIPv6 is false or binding a UDP socket to [::1] failed.";
        }
    }
}

internal static class LoopbackSupport
{
    private static readonly Lazy<bool> Ipv6 = new(() =>
    {
        if (!System.Net.Sockets.Socket.OSSupportsIPv6)
        {
            return false;
        }

        try
        {
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetworkV6, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
            socket.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.IPv6Loopback, 0));
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    });

    public static bool IPv6Available => Ipv6.Value;
}

/// <summary>Tests that measure process-wide allocation must not run beside others.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AllocationSensitiveCollection
{
    public const string Name = "Allocation-sensitive";
}
