// TEMPORARY: stands in for the stack being built on branch `wire`; removed at merge.
#pragma warning disable CS1591, CA1822
using System.Net;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Stack
{
    internal interface IPacketOutput { void SendPacket(PacketBuffer ipPacket); }

    internal sealed class NetStackOptions { public uint Address { get; set; } public int Mtu { get; set; } = 1420; }

    internal sealed class NetStack : IAsyncDisposable
    {
        public NetStack(NetStackOptions options, IPacketOutput output, PacketBufferPool pool, DropCounters drops, TimeProvider time, ILogger logger) => throw new NotImplementedException();
        public void DeliverInbound(PacketBuffer packet) => throw new NotImplementedException();
        public Task<TimeSpan> PingAsync(uint destination, int payloadSize, TimeSpan timeout, CancellationToken ct) => throw new NotImplementedException();
        public TunnelMesh.Net.MeshUdpSocket BindUdp(int port) => throw new NotImplementedException();
        public ValueTask DisposeAsync() => throw new NotImplementedException();
    }
}

namespace TunnelMesh.Net
{
    public sealed class MeshUdpSocket : IAsyncDisposable
    {
        public IPEndPoint LocalEndPoint => throw new NotImplementedException();
        public ValueTask SendToAsync(ReadOnlyMemory<byte> payload, IPEndPoint destination, CancellationToken ct = default) => throw new NotImplementedException();
        public ValueTask<MeshUdpReceiveResult> ReceiveFromAsync(Memory<byte> buffer, CancellationToken ct = default) => throw new NotImplementedException();
        public ValueTask DisposeAsync() => throw new NotImplementedException();
    }

    public readonly record struct MeshUdpReceiveResult(int ReceivedBytes, IPEndPoint RemoteEndPoint);
}

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
