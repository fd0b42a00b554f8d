// TEMPORARY: stands in for the transport being built on branch `units`; removed at merge.
#pragma warning disable CS1591, CA1822
namespace TunnelMesh.Net.Transport
{
    internal sealed class UdpTransport : IDatagramTransport
    {
        public UdpTransport(System.Net.IPAddress bindAddress, int port, PacketBufferPool pool, DropCounters drops, Microsoft.Extensions.Logging.ILogger logger) => throw new NotImplementedException();
        public int LocalPort => throw new NotImplementedException();
        public void Start(IDatagramReceiver receiver) => throw new NotImplementedException();
        public void Send(ReadOnlySpan<PacketBuffer> batch) => throw new NotImplementedException();
        public ValueTask DisposeAsync() => throw new NotImplementedException();
    }
}
