using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Tests.Interop;

/// <summary>
/// The userspace stack faces the Linux kernel through a TUN device in a namespace made by the test
/// (<see cref="KernelPeer"/>): the kernel's ping, ICMP and UDP sockets are the real peer.
/// </summary>
[Collection(nameof(InteropCollection))]
public sealed class KernelTunLinkTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    [ExternalFact("ip", "ping", "sh")]
    public async Task Kernel_ping_gets_replies_from_the_stack_including_fragmented_ones()
    {
        await using var kernel = await KernelPeer.CreateAsync();

        var small = await kernel.KernelPingAsync(5, TimeSpan.FromSeconds(0.05));
        Assert.True(small.Received == 5, $"{small.Output}\n{kernel.Describe()}");

        // 3000 bytes of ICMP data: the kernel fragments the request at the MTU, the stack reassembles
        // it and fragments the reply, the kernel reassembles that.
        var large = await kernel.KernelPingAsync(3, TimeSpan.FromSeconds(0.05), payloadSize: 3000);
        Assert.True(large.Received == 3, $"{large.Output}\n{kernel.Describe()}");

        Assert.True(kernel.Link.PacketsRead >= 5 + (3 * 3), kernel.Describe());
        Assert.Equal(0, kernel.Link.WriteErrors);
        Assert.Equal(0, kernel.Link.Ipv6PacketsRead); // IPv6 is off on the device
        Assert.Equal(0, kernel.Drops.Get(DropReason.MalformedPacket));
        Assert.Equal(0, kernel.Drops.Get(DropReason.BadChecksum));
        Assert.Null(kernel.Link.DeliveryError);
    }

    [ExternalFact("ip", "sh")]
    public async Task Stack_pings_the_kernel_and_gets_replies()
    {
        await using var kernel = await KernelPeer.CreateAsync();
        for (int i = 0; i < 3; i++)
        {
            await kernel.Stack.PingAsync(kernel.KernelAddressValue, 56, TimeSpan.FromSeconds(5)).Within(Limit, () => $"ping {i}\n{kernel.Describe()}");
        }

        // Above the MTU: fragments both ways.
        await kernel.Stack.PingAsync(kernel.KernelAddressValue, 4000, TimeSpan.FromSeconds(5)).Within(Limit, () => $"large ping\n{kernel.Describe()}");
        Assert.Equal(0, kernel.Drops.Get(DropReason.UnsolicitedReply));
        Assert.True(kernel.Link.PacketsWritten >= 3 + 3, kernel.Describe());
    }

    [ExternalFact("ip", "sh")]
    public async Task Udp_datagrams_cross_both_ways_between_a_kernel_socket_and_a_stack_socket()
    {
        await using var kernel = await KernelPeer.CreateAsync();
        using var kernelSocket = kernel.CreateKernelSocket(SocketType.Dgram, ProtocolType.Udp);
        kernelSocket.Bind(new IPEndPoint(kernel.KernelAddress, 0));
        var kernelEndPoint = (IPEndPoint)kernelSocket.LocalEndPoint!;
        await using var stackSocket = kernel.Stack.BindUdp(7000);
        var stackEndPoint = new IPEndPoint(kernel.StackAddress, 7000);
        Assert.Equal(stackEndPoint, stackSocket.LocalEndPoint);

        using var timeout = new CancellationTokenSource(Limit);
        var random = new Random(7);
        // Sizes from empty to above the MTU (fragmented by the sender, reassembled by the receiver).
        foreach (int size in new[] { 0, 1, 100, 1392, 1393, 4000, 20000 })
        {
            var toKernel = new byte[size];
            random.NextBytes(toKernel);
            await stackSocket.SendToAsync(toKernel, kernelEndPoint, timeout.Token);
            var buffer = new byte[65536];
            var received = await Bounded(kernelSocket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), timeout.Token).AsTask(), () => $"{size} bytes at the kernel\n{kernel.Describe()}");
            Assert.Equal(toKernel, buffer[..received.ReceivedBytes]);
            Assert.Equal(stackEndPoint, received.RemoteEndPoint);

            var toStack = new byte[size];
            random.NextBytes(toStack);
            await kernelSocket.SendToAsync(toStack, SocketFlags.None, stackEndPoint, timeout.Token);
            var back = await Bounded(stackSocket.ReceiveFromAsync(buffer, timeout.Token).AsTask(), () => $"{size} bytes at the stack\n{kernel.Describe()}");
            Assert.Equal(toStack, buffer[..back.ReceivedBytes]);
            Assert.Equal(kernelEndPoint, back.RemoteEndPoint);
        }

        Assert.Equal(0, kernel.Drops.Total);
        Assert.Equal(0, kernel.Link.WriteErrors);
    }

    [ExternalFact("ip", "sh")]
    public async Task Kernel_udp_to_a_closed_stack_port_is_refused_by_the_stacks_icmp_error()
    {
        await using var kernel = await KernelPeer.CreateAsync();
        using var kernelSocket = kernel.CreateKernelSocket(SocketType.Dgram, ProtocolType.Udp);
        await kernelSocket.ConnectAsync(new IPEndPoint(kernel.StackAddress, 9));
        await kernelSocket.SendAsync(new byte[] { 1, 2, 3 }, SocketFlags.None);

        // The stack answers port unreachable; a connected kernel UDP socket reports it on the next receive.
        var ex = await Assert.ThrowsAsync<SocketException>(
            () => Bounded(kernelSocket.ReceiveAsync(new byte[16], SocketFlags.None), () => kernel.Describe()));
        Assert.Equal(SocketError.ConnectionRefused, ex.SocketErrorCode);
        Assert.Equal(1, kernel.Drops.Get(DropReason.PortUnreachable));
    }

    [ExternalFact("ip", "ping", "nft", "sh")]
    public async Task Nftables_random_loss_drops_part_of_the_kernels_pings_and_removing_it_heals_the_link()
    {
        await using var kernel = await KernelPeer.CreateAsync();
        await kernel.SetNftLossAsync(30);

        // 30% each way. ping is told of its own requests dropped on egress (ENOBUFS) and sends them
        // again, so the loss it reports is the replies dropped on ingress: about 140 of 200 come back
        // (standard deviation 6.5). Either way, well above 0 and well below 200.
        var lossy = await kernel.KernelPingAsync(200, TimeSpan.FromSeconds(0.01), waitSeconds: 1);
        Assert.Equal(200, lossy.Transmitted);
        Assert.True(lossy.Received is > 90 and < 185, $"{lossy.Received} of {lossy.Transmitted} replies under 30% loss each way\n{lossy.Output}\n{kernel.Describe()}");

        await kernel.SetNftLossAsync(0);
        var clean = await kernel.KernelPingAsync(5, TimeSpan.FromSeconds(0.05));
        Assert.True(clean.Received == 5, $"after removing the loss rules\n{clean.Output}\n{kernel.Describe()}");
    }

    [ExternalFact("ip", "sh")]
    public async Task Link_loss_discards_the_configured_share_of_datagrams_in_each_direction()
    {
        const int Count = 200;
        await using var kernel = await KernelPeer.CreateAsync();
        using var kernelSocket = kernel.CreateKernelSocket(SocketType.Dgram, ProtocolType.Udp);
        kernelSocket.Bind(new IPEndPoint(kernel.KernelAddress, 0));
        var kernelEndPoint = (IPEndPoint)kernelSocket.LocalEndPoint!;
        await using var stackSocket = kernel.Stack.BindUdp(7001);
        var stackEndPoint = new IPEndPoint(kernel.StackAddress, 7001);
        var buffer = new byte[64];

        // Kernel to stack: what the link read and did not discard reaches the socket, nothing more.
        kernel.Link.ReadLossPercent = 30;
        long readBefore = kernel.Link.PacketsRead;
        for (int i = 0; i < Count; i++)
        {
            await kernelSocket.SendToAsync(Numbered(i), SocketFlags.None, stackEndPoint);
        }

        // Counts, not time: once the link has read all of them, every survivor has been delivered.
        await TaskTimeouts.Until(() => kernel.Link.PacketsRead - readBefore == Count, Limit, $"the link reading {Count} datagrams\n{kernel.Describe()}");
        long delivered = Count - kernel.Link.ReadDropped;
        Assert.True(kernel.Link.ReadDropped is > 20 and < 100, $"{kernel.Link.ReadDropped} of {Count} discarded at 30%\n{kernel.Describe()}");
        var seen = new HashSet<int>();
        for (long i = 0; i < delivered; i++)
        {
            var r = await Bounded(stackSocket.ReceiveFromAsync(buffer).AsTask(), () => $"datagram {i} of {delivered} at the stack\n{kernel.Describe()}");
            Assert.True(seen.Add(BinaryPrimitives.ReadInt32BigEndian(buffer)), "a datagram arrived twice");
        }

        // Stack to kernel: exactly the datagrams written arrive.
        kernel.Link.ReadLossPercent = 0;
        kernel.Link.WriteLossPercent = 30;
        long writtenBefore = kernel.Link.PacketsWritten;
        for (int i = 0; i < Count; i++)
        {
            await stackSocket.SendToAsync(Numbered(i), kernelEndPoint);
        }

        long written = kernel.Link.PacketsWritten - writtenBefore;
        Assert.True(kernel.Link.WriteDropped is > 20 and < 100, $"{kernel.Link.WriteDropped} of {Count} discarded at 30%\n{kernel.Describe()}");
        Assert.Equal(Count, written + kernel.Link.WriteDropped);
        using var timeout = new CancellationTokenSource(Limit);
        for (long i = 0; i < written; i++)
        {
            await kernelSocket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), timeout.Token);
        }

        Assert.Equal(0, kernelSocket.Available);
        Assert.Equal(0, kernel.Drops.Total);
    }

    [ExternalFact("ip", "sh")]
    public async Task Disposing_leaves_no_namespace_and_no_device_and_later_sends_are_counted()
    {
        var kernel = await KernelPeer.CreateAsync();
        string ns = kernel.Namespace.Name;
        string device = kernel.Link.DeviceName;
        Assert.Contains(device, await kernel.Namespace.ExecCheckAsync("ip", "-o", "link", "show"));
        Assert.Contains(ns, await ProcessRunner.CheckAsync("ip", "netns", "list"));

        await kernel.DisposeAsync();
        await kernel.DisposeAsync(); // twice is harmless
        Assert.DoesNotContain(ns, await ProcessRunner.CheckAsync("ip", "netns", "list"));
        Assert.DoesNotContain(device, await ProcessRunner.CheckAsync("ip", "-o", "link", "show"));

        // A packet sent after the link closed is counted, not thrown.
        var packet = kernel.Pool.Rent();
        packet.Length = 20;
        kernel.Link.SendPacket(packet);
        Assert.Equal(1, kernel.Link.WritesAfterDispose);
    }

    [ExternalFact("ip", "sh")]
    public async Task Closing_the_link_deletes_its_device_from_a_namespace_that_lives_on()
    {
        await using var ns = await NetNamespace.CreateAsync("tmk");
        var link = await TunLink.CreateAsync(ns, IPAddress.Parse("10.77.0.1"), IPAddress.Parse("10.77.0.2"));
        Assert.Contains(link.DeviceName, await ns.ExecCheckAsync("ip", "-o", "link", "show"));

        link.Dispose(); // never started: no thread to stop
        link.Dispose();
        Assert.DoesNotContain(link.DeviceName, await ns.ExecCheckAsync("ip", "-o", "link", "show"));
    }

    [ExternalFact("ip", "sh")]
    public async Task Deleting_the_namespace_under_a_running_link_ends_its_reader_and_leaves_no_device()
    {
        var ns = await NetNamespace.CreateAsync("tmk");
        using var link = await TunLink.CreateAsync(ns, IPAddress.Parse("10.77.0.1"), IPAddress.Parse("10.77.0.2"));
        link.Start(packet => packet.Return());
        await ns.DisposeAsync();

        // The kernel unregisters the device with its namespace; the reader sees the error and stops.
        await TaskTimeouts.Until(() => link.ReadErrors > 0, Limit, $"the reader noticing the device is gone\n{link}");
        link.Dispose();
        Assert.DoesNotContain(link.DeviceName, await ProcessRunner.CheckAsync("ip", "-o", "link", "show"));
    }

    private static byte[] Numbered(int i)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, i);
        return bytes;
    }

    /// <summary>Awaits a result with the test's bound; the message is built only on failure.</summary>
    private static async Task<T> Bounded<T>(Task<T> task, Func<string> what)
    {
        await ((Task)task).Within(Limit, what);
        return await task;
    }
}
