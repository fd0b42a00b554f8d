using System.Net;
using BenchmarkDotNet.Attributes;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Benchmarks.Units;

/// <summary>
/// One batch of 1420-byte datagrams sent over UDP loopback and received on the other transport's
/// receive thread (the operation ends when the whole batch has arrived). Per-datagram figures:
/// OperationsPerInvoke = batch size.
/// </summary>
[MemoryDiagnoser]
public class UdpLoopbackBenchmark
{
    private const int Batch = 32;
    private readonly SemaphoreSlim _arrived = new(0);
    private UdpTransport _sender = null!;
    private UdpTransport _receiver = null!;
    private PacketBuffer[] _buffers = null!;

    [Params(true, false)]
    public bool Native { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _sender = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, UseNativeBatching = Native });
        _receiver = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, UseNativeBatching = Native });
        _receiver.Start(new Sink(_arrived));
        var to = Endpoint.FromIPv4(0x7F000001, (ushort)_receiver.LocalPort);
        _buffers = new PacketBuffer[Batch];
        for (int i = 0; i < Batch; i++)
        {
            _buffers[i] = PacketBufferPool.Shared.Rent();
            _buffers[i].Length = 1420;
            _buffers[i].Span.Fill((byte)i);
            _buffers[i].Endpoint = to;
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _sender.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _receiver.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _arrived.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public void SendAndReceiveBatch()
    {
        _sender.Send(_buffers);
        for (int i = 0; i < Batch; i++)
        {
            if (!_arrived.Wait(5000))
            {
                throw new TimeoutException("A datagram was lost on loopback.");
            }
        }
    }

    private sealed class Sink(SemaphoreSlim arrived) : IDatagramReceiver
    {
        public void OnDatagrams(ReadOnlySpan<PacketBuffer> batch)
        {
            foreach (var buffer in batch)
            {
                buffer.Return();
            }

            arrived.Release(batch.Length);
        }
    }
}
