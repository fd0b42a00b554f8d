namespace TunnelMesh.Net.Transport;

/// <summary>
/// Receives batches of datagrams from a transport. Called on the transport's receive thread; the
/// receiver takes ownership of every buffer in the batch (it returns each to its pool, or keeps it).
/// Implementations must not throw: a bad datagram is dropped and counted.
/// </summary>
internal interface IDatagramReceiver
{
    /// <summary>Handles a batch of received datagrams. <see cref="PacketBuffer.Endpoint"/> is the source.</summary>
    void OnDatagrams(ReadOnlySpan<PacketBuffer> batch);
}

/// <summary>
/// Moves opaque datagrams (WireGuard messages) to and from remote endpoints in batches: UDP, the
/// coordinator relay, or a decorator such as a fault injector. Transports never see plaintext.
/// </summary>
internal interface IDatagramTransport : IAsyncDisposable
{
    /// <summary>The local UDP port (0 for transports without one).</summary>
    int LocalPort { get; }

    /// <summary>Starts delivering received datagrams to <paramref name="receiver"/>. Called once.</summary>
    void Start(IDatagramReceiver receiver);

    /// <summary>
    /// Sends a batch; each buffer's <see cref="PacketBuffer.Endpoint"/> is its destination. The caller
    /// keeps ownership of the buffers (they may be reused as soon as this returns). Datagrams that
    /// cannot be sent are dropped and counted, as UDP would; this does not throw for them.
    /// </summary>
    void Send(ReadOnlySpan<PacketBuffer> batch);
}
