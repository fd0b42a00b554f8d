using System.Net;
using System.Net.Sockets;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Tests.Transport;

public class UdpTransportTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    internal static byte[] Payload(int size, int seed)
    {
        var data = new byte[size];
        for (int i = 0; i < size; i++)
        {
            data[i] = (byte)((i * 7) + (size * 13) + seed);
        }

        return data;
    }

    internal static PacketBuffer Buffer(byte[] data, Endpoint destination)
    {
        var buffer = PacketBufferPool.Shared.Rent();
        buffer.Length = data.Length;
        data.CopyTo(buffer.Span);
        buffer.Endpoint = destination;
        return buffer;
    }

    private static Endpoint EndpointOf(IPAddress address, int port) => Endpoint.FromIPEndPoint(new IPEndPoint(address, port));

    /// <summary>Sends one datagram of every size in 1..1500 and one of 65000 bytes, 32 at a time, waiting for each group.</summary>
    private static void SendAllSizes(UdpTransport from, Endpoint to, DatagramSink sink, int seed)
    {
        var sizes = Enumerable.Range(1, 1500).Append(65000).ToArray();
        foreach (var chunk in sizes.Chunk(32))
        {
            var buffers = chunk.Select(size => Buffer(Payload(size, seed), to)).ToArray();
            from.Send(buffers);
            foreach (var b in buffers)
            {
                b.Return(); // the caller keeps ownership: ours to return as soon as Send returns
            }

            Assert.True(sink.WaitFor(chunk.Length, Timeout), $"timed out: {sink.Count} of {sizes.Length} arrived");
        }
    }

    private static void AssertAllSizes(DatagramSink sink, Endpoint expectedSource, int seed)
    {
        var received = sink.Received.ToArray();
        Assert.Equal(1501, received.Length);
        Assert.Equal(Enumerable.Range(1, 1500).Append(65000).Order(), received.Select(r => r.Data.Length).Order());
        foreach (var (data, source) in received)
        {
            Assert.Equal(expectedSource, source);
            Assert.True(data.AsSpan().SequenceEqual(Payload(data.Length, seed)), $"datagram of {data.Length} bytes corrupted");
        }
    }

    private static async Task ExchangeBothWays(IPAddress loopback, bool native)
    {
        await using var a = new UdpTransport(new UdpTransportOptions { BindAddress = loopback, UseNativeBatching = native });
        await using var b = new UdpTransport(new UdpTransportOptions { BindAddress = loopback, UseNativeBatching = native });
        Assert.Equal(native && OperatingSystem.IsLinux(), a.IsNativeBatching);
        using var atA = new DatagramSink();
        using var atB = new DatagramSink();
        a.Start(atA);
        b.Start(atB);
        var aEndpoint = EndpointOf(loopback, a.LocalPort);
        var bEndpoint = EndpointOf(loopback, b.LocalPort);

        SendAllSizes(a, bEndpoint, atB, seed: 1);
        SendAllSizes(b, aEndpoint, atA, seed: 2);

        AssertAllSizes(atB, aEndpoint, seed: 1);
        AssertAllSizes(atA, bEndpoint, seed: 2);
        long bytes = Enumerable.Range(1, 1500).Sum() + 65000;
        Assert.Equal(new TransportStatistics(1501, bytes, 1501, bytes, 0, 0), a.Statistics);
        Assert.Equal(new TransportStatistics(1501, bytes, 1501, bytes, 0, 0), b.Statistics);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public Task Datagrams_of_every_size_cross_IPv4_loopback_both_ways(bool native) => ExchangeBothWays(IPAddress.Loopback, native);

    /// <summary>
    /// Runs of equal datagrams (what a TCP flight becomes) with a shorter one ending each run, and
    /// runs to two destinations interleaved: with UDP GSO on the sender and GRO on the receiver
    /// (Linux), each on and off, every datagram arrives once, intact and in order, and the
    /// statistics count datagrams, not system calls.
    /// </summary>
    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task Runs_of_equal_datagrams_arrive_in_order_with_segmentation_and_coalescing(bool segment, bool coalesce)
    {
        await using var a = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, UseSegmentationOffload = segment });
        // Small receive batches, so that coalesced messages are delivered across several slices.
        await using var b = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, UseReceiveOffload = coalesce, BatchSize = 8 });
        await using var c = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, UseReceiveOffload = coalesce, BatchSize = 8 });
        if (OperatingSystem.IsLinux())
        {
            Assert.Equal(segment, a.IsSegmenting);
            Assert.Equal(coalesce, b.IsReceiveCoalescing);
        }

        using var atB = new DatagramSink(scribble: true);
        using var atC = new DatagramSink(scribble: true);
        b.Start(atB);
        c.Start(atC);
        var toB = EndpointOf(IPAddress.Loopback, b.LocalPort);
        var toC = EndpointOf(IPAddress.Loopback, c.LocalPort);

        // 40 x 1452 + 100 to B, 3 x 1452 to C, 64 x 1452 to B (more than one GSO message), 1 x 60 to C.
        var plan = Enumerable.Repeat((toB, 1452), 40).Append((toB, 100))
            .Concat(Enumerable.Repeat((toC, 1452), 3))
            .Concat(Enumerable.Repeat((toB, 1452), 64))
            .Append((toC, 60))
            .Select((d, i) => (To: d.Item1, Data: Payload(d.Item2, seed: i)))
            .ToArray();
        var buffers = plan.Select(d => Buffer(d.Data, d.To)).ToArray();
        a.Send(buffers);
        foreach (var buffer in buffers)
        {
            buffer.Return();
        }

        var expectB = plan.Where(d => d.To == toB).Select(d => d.Data).ToArray();
        var expectC = plan.Where(d => d.To == toC).Select(d => d.Data).ToArray();
        Assert.True(atB.WaitFor(expectB.Length, Timeout), $"B: {atB.Count} of {expectB.Length}");
        Assert.True(atC.WaitFor(expectC.Length, Timeout), $"C: {atC.Count} of {expectC.Length}");
        Assert.Equal(expectB, atB.Received.Select(r => r.Data).ToArray());
        Assert.Equal(expectC, atC.Received.Select(r => r.Data).ToArray());
        Assert.Equal(plan.Length, a.Statistics.DatagramsSent);
        Assert.Equal(expectB.Length, b.Statistics.DatagramsReceived);
        Assert.Equal(0, a.Statistics.SendFailures);
        if (OperatingSystem.IsLinux() && segment && coalesce)
        {
            Assert.True(b.CoalescedMessages > 0, "the kernel handed over coalesced datagrams, and they were cut apart");
        }
    }

    [IPv6LoopbackFact]
    public async Task Datagrams_of_every_size_cross_IPv6_loopback_both_ways()
    {
        await ExchangeBothWays(IPAddress.IPv6Loopback, native: true);
        await ExchangeBothWays(IPAddress.IPv6Loopback, native: false);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_dual_mode_socket_talks_to_IPv4_peers_with_IPv4_endpoints(bool native)
    {
        await using var dual = new UdpTransport(new UdpTransportOptions { UseNativeBatching = native });
        await using var v4 = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, UseNativeBatching = native });
        Assert.Equal(Socket.OSSupportsIPv6, dual.IsIPv6Socket);
        using var atDual = new DatagramSink();
        using var atV4 = new DatagramSink();
        dual.Start(atDual);
        v4.Start(atV4);

        var toV4 = Buffer(Payload(100, 5), Endpoint.FromIPv4(0x7F000001, (ushort)v4.LocalPort));
        dual.Send([toV4]);
        Assert.True(atV4.WaitFor(1, Timeout));
        Assert.True(atV4.Received.TryDequeue(out var first));
        Assert.Equal(Endpoint.FromIPv4(0x7F000001, (ushort)dual.LocalPort), first.Source);
        Assert.True(first.Source.IsIPv4);

        v4.Send([Buffer(Payload(200, 6), first.Source)]);
        Assert.True(atDual.WaitFor(1, Timeout));
        Assert.True(atDual.Received.TryDequeue(out var reply));
        Assert.Equal(Endpoint.FromIPv4(0x7F000001, (ushort)v4.LocalPort), reply.Source);
        Assert.Equal(Payload(200, 6), reply.Data);
        toV4.Return();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Sending_to_a_closed_port_does_not_stop_the_receive_loop(bool native)
    {
        int closedPort;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            closedPort = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }

        await using var a = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, UseNativeBatching = native });
        await using var b = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, UseNativeBatching = native });
        using var atA = new DatagramSink();
        using var atB = new DatagramSink();
        a.Start(atA);
        b.Start(atB);
        var closed = Endpoint.FromIPv4(0x7F000001, (ushort)closedPort);
        var toA = Endpoint.FromIPv4(0x7F000001, (ushort)a.LocalPort);
        var toB = Endpoint.FromIPv4(0x7F000001, (ushort)b.LocalPort);

        for (int round = 0; round < 5; round++)
        {
            var dead = Buffer(Payload(50, round), closed);
            a.Send([dead, dead, dead]); // each draws an ICMP port unreachable back to a's socket
            dead.Return();

            var live = Buffer(Payload(60, round), toA);
            b.Send([live]);
            live.Return();
            Assert.True(atA.WaitFor(1, Timeout), $"round {round}: a stopped receiving");

            var back = Buffer(Payload(70, round), toB);
            a.Send([back]);
            back.Return();
            Assert.True(atB.WaitFor(1, Timeout), $"round {round}: a stopped sending");
        }
    }

    [Fact]
    public async Task Dispose_twice_and_send_after_dispose_only_counts()
    {
        var a = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback });
        using var sink = new DatagramSink();
        a.Start(sink);
        Assert.Throws<InvalidOperationException>(() => a.Start(sink));
        await a.DisposeAsync().AsTask().WaitAsync(Timeout);
        await a.DisposeAsync().AsTask().WaitAsync(Timeout);
        var buffer = Buffer(Payload(10, 0), Endpoint.FromIPv4(0x7F000001, 9));
        a.Send([buffer]);
        buffer.Return();
        Assert.Equal(1, a.Statistics.SendFailures);
        Assert.Throws<ObjectDisposedException>(() => a.Start(sink));

        // Never started: disposal does not wait for a thread.
        var b = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback });
        await b.DisposeAsync();
        await b.DisposeAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_IPv4_socket_drops_and_counts_IPv6_destinations(bool native)
    {
        var drops = new DropCounters();
        await using var a = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, UseNativeBatching = native, Drops = drops });
        var buffer = Buffer(Payload(10, 0), EndpointOf(IPAddress.IPv6Loopback, 9));
        a.Send([buffer, buffer]);
        buffer.Return();
        Assert.Equal(2, a.Statistics.SendFailures);
        Assert.Equal(0, a.Statistics.DatagramsSent);
        Assert.Equal(2, drops.Get(DropReason.SendFailed));
    }

    [Fact]
    public void Native_structures_have_the_C_layout()
    {
        unsafe
        {
            Assert.Equal(IntPtr.Size == 8 ? 16 : 8, sizeof(LinuxSocketInterop.IoVec));
            Assert.Equal(IntPtr.Size == 8 ? 56 : 28, sizeof(LinuxSocketInterop.MsgHdr));
            Assert.Equal(IntPtr.Size == 8 ? 64 : 32, sizeof(LinuxSocketInterop.MMsgHdr));
            Assert.Equal(28, sizeof(LinuxSocketInterop.SockAddrIn6));
            Assert.Equal(16, sizeof(LinuxSocketInterop.SockAddrIn));
        }
    }
}

[Collection(AllocationSensitiveCollection.Name)]
public class UdpTransportAllocationTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Steady_state_send_and_receive_allocate_nothing_per_datagram(bool native)
    {
        const int Batch = 32;
        const int Rounds = 300;
        const int N = Batch * Rounds;
        await using var a = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, UseNativeBatching = native });
        await using var b = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, UseNativeBatching = native });
        using var sink = new DatagramSink(keep: false);
        b.Start(sink);
        var to = Endpoint.FromIPv4(0x7F000001, (ushort)b.LocalPort);
        var buffers = Enumerable.Range(0, Batch).Select(i => UdpTransportTests.Buffer(UdpTransportTests.Payload(1420, i), to)).ToArray();

        void Run(int rounds)
        {
            for (int r = 0; r < rounds; r++)
            {
                a.Send(buffers);
                Assert.True(sink.WaitFor(Batch, Timeout));
            }
        }

        Run(100); // warm-up: pools filled, code jitted
        long threadBefore = GC.GetAllocatedBytesForCurrentThread();
        long receiveBefore = sink.ReceiveThreadAllocatedBytes;
        Run(Rounds);
        long receiveDelta = sink.ReceiveThreadAllocatedBytes - receiveBefore;
        long threadDelta = GC.GetAllocatedBytesForCurrentThread() - threadBefore;

        foreach (var buffer in buffers)
        {
            buffer.Return();
        }

        Assert.Equal((100 + Rounds) * (long)Batch, sink.Count);
        // One allocation per datagram would be at least 24 bytes each: N * 24 bytes.
        Assert.True(threadDelta < 1024, $"sending thread allocated {threadDelta} bytes for {N} datagrams");
        // Measured on the receive thread itself (process-wide counts would include other tests' threads).
        Assert.True(receiveDelta < 1024, $"receive thread allocated {receiveDelta} bytes for {N} datagrams");
    }
}
