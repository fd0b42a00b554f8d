namespace TunnelMesh.Net.Transport;

/// <summary>A snapshot of a transport's counters.</summary>
/// <param name="DatagramsReceived">Datagrams handed to the receiver.</param>
/// <param name="BytesReceived">Payload bytes handed to the receiver.</param>
/// <param name="DatagramsSent">Datagrams accepted by the network (socket or hub).</param>
/// <param name="BytesSent">Payload bytes accepted by the network.</param>
/// <param name="SendFailures">Datagrams dropped on send (error, no route, wrong family, full queue).</param>
/// <param name="ReceiveErrors">Receive calls that failed and were retried (e.g. ICMP-induced ECONNREFUSED), and receiver exceptions (a receiver must not throw; the loop survives it).</param>
internal readonly record struct TransportStatistics(
    long DatagramsReceived,
    long BytesReceived,
    long DatagramsSent,
    long BytesSent,
    long SendFailures,
    long ReceiveErrors);

/// <summary>Thread-safe counters of one transport, readable at any time for stats.</summary>
internal sealed class TransportCounters
{
    private readonly DropCounters? _drops;
    private long _datagramsReceived;
    private long _bytesReceived;
    private long _datagramsSent;
    private long _bytesSent;
    private long _sendFailures;
    private long _receiveErrors;

    /// <summary>Creates counters; send failures are also counted as <see cref="DropReason.SendFailed"/> in <paramref name="drops"/>.</summary>
    public TransportCounters(DropCounters? drops = null) => _drops = drops;

    /// <summary>Counts received datagrams.</summary>
    public void AddReceived(long datagrams, long bytes)
    {
        Interlocked.Add(ref _datagramsReceived, datagrams);
        Interlocked.Add(ref _bytesReceived, bytes);
    }

    /// <summary>Counts sent datagrams.</summary>
    public void AddSent(long datagrams, long bytes)
    {
        Interlocked.Add(ref _datagramsSent, datagrams);
        Interlocked.Add(ref _bytesSent, bytes);
    }

    /// <summary>Counts datagrams dropped on send.</summary>
    public void AddSendFailures(long datagrams)
    {
        Interlocked.Add(ref _sendFailures, datagrams);
        _drops?.Add(DropReason.SendFailed, datagrams);
    }

    /// <summary>Counts a failed (and retried) receive call.</summary>
    public void AddReceiveError() => Interlocked.Increment(ref _receiveErrors);

    /// <summary>The current values.</summary>
    public TransportStatistics Snapshot() => new(
        Interlocked.Read(ref _datagramsReceived),
        Interlocked.Read(ref _bytesReceived),
        Interlocked.Read(ref _datagramsSent),
        Interlocked.Read(ref _bytesSent),
        Interlocked.Read(ref _sendFailures),
        Interlocked.Read(ref _receiveErrors));
}
