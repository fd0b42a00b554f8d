using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Tests.Support;

/// <summary>
/// A transport decorator that can also hand datagrams straight to the node's receiver, exactly as
/// the inner transport's receive thread would (bypassing the kernel socket buffer).
/// </summary>
internal sealed class InjectingTransport(IDatagramTransport inner, PacketBufferPool pool) : IDatagramTransport
{
    private IDatagramReceiver? _receiver;

    public int LocalPort => inner.LocalPort;

    public void Start(IDatagramReceiver receiver)
    {
        _receiver = receiver;
        inner.Start(receiver);
    }

    public void Send(ReadOnlySpan<PacketBuffer> batch) => inner.Send(batch);

    /// <summary>Delivers copies of <paramref name="datagrams"/> as one batch from <paramref name="source"/>.</summary>
    public void Inject(IEnumerable<byte[]> datagrams, Endpoint source)
    {
        var batch = new List<PacketBuffer>();
        foreach (var d in datagrams)
        {
            var b = pool.Rent();
            b.Reset(PacketBuffer.HeadRoom - 16);
            d.CopyTo(b.Available);
            b.Length = d.Length;
            b.Endpoint = source;
            batch.Add(b);
        }

        _receiver!.OnDatagrams(batch.ToArray());
    }

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
