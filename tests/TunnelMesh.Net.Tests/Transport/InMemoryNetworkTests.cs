using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Tests.Transport;

public class InMemoryNetworkTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Two_transports_exchange_datagrams_on_their_own_threads()
    {
        var network = new InMemoryNetwork();
        await using var a = network.CreateTransport();
        await using var b = network.CreateTransport();
        Assert.Equal(Endpoint.FromIPv4(0x0A000001, 51820), a.LocalEndpoint);
        Assert.Equal(Endpoint.FromIPv4(0x0A000002, 51820), b.LocalEndpoint);
        using var atA = new DatagramSink();
        using var atB = new DatagramSink();
        a.Start(atA);
        b.Start(atB);

        var buffers = Enumerable.Range(1, 100).Select(i => UdpTransportTests.Buffer(UdpTransportTests.Payload(i * 13, i), b.LocalEndpoint)).ToArray();
        a.Send(buffers);
        foreach (var buffer in buffers)
        {
            buffer.Span.Clear(); // the transport copied them: the sender may reuse its buffers at once
            buffer.Return();
        }

        Assert.True(atB.WaitFor(100, Timeout));
        Assert.NotEqual(Environment.CurrentManagedThreadId, atB.LastThreadId);
        var received = atB.Received.ToArray();
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal(a.LocalEndpoint, received[i].Source);
            Assert.Equal(UdpTransportTests.Payload((i + 1) * 13, i + 1), received[i].Data); // in order
        }

        var reply = UdpTransportTests.Buffer([1, 2, 3], a.LocalEndpoint);
        b.Send([reply]);
        reply.Return();
        Assert.True(atA.WaitFor(1, Timeout));
        Assert.Equal(b.LocalEndpoint, atA.Received.Single().Source);
        Assert.Equal(100, a.Statistics.DatagramsSent);
        Assert.Equal(100, b.Statistics.DatagramsReceived);
    }

    [Fact]
    public async Task Unknown_destinations_full_queues_and_disposed_peers_count_as_send_failures()
    {
        var network = new InMemoryNetwork(queueCapacity: 10);
        await using var a = network.CreateTransport();
        var b = network.CreateTransport(Endpoint.FromIPv4(0x0A0000FE, 4000));
        Assert.Throws<InvalidOperationException>(() => network.CreateTransport(b.LocalEndpoint));

        var nowhere = UdpTransportTests.Buffer([1], Endpoint.FromIPv4(0x0A000063, 1));
        a.Send([nowhere]);
        Assert.Equal(1, a.Statistics.SendFailures);

        // b is not started: its queue fills at 10.
        var toB = UdpTransportTests.Buffer([2], b.LocalEndpoint);
        a.Send(Enumerable.Repeat(toB, 15).ToArray());
        Assert.Equal(10, a.Statistics.DatagramsSent);
        Assert.Equal(6, a.Statistics.SendFailures);

        await b.DisposeAsync();
        await b.DisposeAsync();
        a.Send([toB]);
        Assert.Equal(7, a.Statistics.SendFailures);
        await using var again = network.CreateTransport(b.LocalEndpoint); // the endpoint is free again
        nowhere.Return();
        toB.Return();
    }
}

public class ReceiveLoopRobustnessTests
{
    private sealed class ThrowingOnce : IDatagramReceiver
    {
        private int _calls;

        public SemaphoreSlim First { get; } = new(0);

        public SemaphoreSlim Second { get; } = new(0);

        public void OnDatagrams(ReadOnlySpan<PacketBuffer> batch)
        {
            foreach (var buffer in batch)
            {
                buffer.Return();
            }

            if (Interlocked.Increment(ref _calls) == 1)
            {
                First.Release();
                throw new InvalidOperationException("receiver bug");
            }

            Second.Release();
        }
    }

    [Fact]
    public async Task A_throwing_receiver_does_not_stop_the_UDP_receive_loop()
    {
        await using var a = new UdpTransport(new UdpTransportOptions { BindAddress = System.Net.IPAddress.Loopback });
        await using var b = new UdpTransport(new UdpTransportOptions { BindAddress = System.Net.IPAddress.Loopback });
        var receiver = new ThrowingOnce();
        b.Start(receiver);
        var buffer = UdpTransportTests.Buffer([1], Endpoint.FromIPv4(0x7F000001, (ushort)b.LocalPort));
        a.Send([buffer]);
        Assert.True(await receiver.First.WaitAsync(TimeSpan.FromSeconds(10)));
        a.Send([buffer]);
        Assert.True(await receiver.Second.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, b.Statistics.ReceiveErrors);
        buffer.Return();
    }
}
