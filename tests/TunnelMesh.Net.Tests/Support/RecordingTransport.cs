using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Tests.Support;

/// <summary>A transport decorator that keeps a copy of every datagram sent (real fixtures for fuzzing).</summary>
internal sealed class RecordingTransport(IDatagramTransport inner) : IDatagramTransport
{
    private readonly List<byte[]> _sent = new();

    public int LocalPort => inner.LocalPort;

    public IReadOnlyList<byte[]> Sent
    {
        get
        {
            lock (_sent)
            {
                return _sent.ToList();
            }
        }
    }

    public void Start(IDatagramReceiver receiver) => inner.Start(receiver);

    public void Send(ReadOnlySpan<PacketBuffer> batch)
    {
        lock (_sent)
        {
            foreach (var b in batch)
            {
                _sent.Add(b.Span.ToArray());
            }
        }

        inner.Send(batch);
    }

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
