using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using TunnelMesh.Net.Stack.Tcp;
using TunnelMesh.Net.Tests.Support;
using Xunit.Abstractions;

namespace TunnelMesh.Net.Tests.Interop;

/// <summary>
/// Our TCP against the Linux kernel's: the stack's link is a TUN device in a namespace made by the
/// test (<see cref="KernelPeer"/>), and the kernel's sockets inside it are the peer. Bulk data with
/// hashes, with and without loss, both directions of opening, closes, half-closes, resets, refused
/// ports, option negotiation and back-pressure. Throughput appears in the test output as figures.
/// </summary>
[Collection(nameof(InteropCollection))]
public sealed class KernelTcpTests(ITestOutputHelper output)
{
    private const long Bulk = 64L << 20;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan BulkLimit = TimeSpan.FromSeconds(45);

    [ExternalFact("ip", "sh")]
    public async Task Kernel_client_downloads_and_uploads_64_MiB_through_a_stack_listener_with_equal_hashes()
    {
        await using var kernel = await KernelPeer.CreateAsync();
        await using var listener = Listen(kernel, 8080);
        using var client = kernel.CreateKernelSocket(SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync().AsTask();
        await client.ConnectAsync(new IPEndPoint(kernel.StackAddress, 8080)).Within(Limit, () => $"kernel connect\n{kernel.Describe()}");
        await using var server = await accept.Within(Limit, "accept");
        using var kernelStream = new NetworkStream(client, ownsSocket: false);
        Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);

        // Download: the kernel reads exactly what the stack writes (no FIN yet).
        var down = TcpTransfer.SendAsync(server, Bulk, seed: 1);
        var downReceived = TcpTransfer.ReceiveAsync(kernelStream, exactly: Bulk);
        await Task.WhenAll(down, downReceived).Within(BulkLimit, () => $"64 MiB download\n{kernel.Describe()}");
        TcpTransfer.AssertSame(await down, await downReceived, "download");

        // Upload: the kernel writes and half-closes; the stack reads to the FIN, then closes its side.
        var up = TcpTransfer.SendAsync(kernelStream, Bulk, seed: 2, afterLastWrite: () => { client.Shutdown(SocketShutdown.Send); return Task.CompletedTask; });
        var upReceived = TcpTransfer.ReceiveAsync(server);
        await Task.WhenAll(up, upReceived).Within(BulkLimit, () => $"64 MiB upload\n{kernel.Describe()}");
        TcpTransfer.AssertSame(await up, await upReceived, "upload");

        await server.ShutdownSendAsync();
        Assert.Equal(0, await client.ReceiveAsync(new byte[1], SocketFlags.None).Within(Limit, "the kernel seeing our FIN"));
        Assert.Equal(0, kernel.Link.WriteErrors);
        Assert.Null(kernel.Link.DeliveryError);
        output.WriteLine($"download {await downReceived}; upload {await upReceived}; {Describe(server)}");
    }

    [ExternalFact("ip", "nft", "sh")]
    public async Task Both_ways_under_random_loss_in_each_direction_hashes_match()
    {
        // 64 MiB each way, as the issue asks: the largest size that stays well under 20 s on the 2-core
        // machine (7 to 10 s per run measured, both directions at once, with other builds running).
        // Our sender averages 55 to 75 Mbit/s here, the kernel's 100 to 230: Linux compresses its
        // SACKs and holds ACKs while its reader lags, so our small loss-limited window often waits
        // for a tail loss probe (about 300 per 64 MiB); retransmission timeouts are 0 or 1 per run.
        const int LossPercent = 2;
        const long Size = 64L << 20;
        await using var kernel = await KernelPeer.CreateAsync();

        // Stack to kernel: nftables drops on the device's ingress (real loss for our sender). Kernel to
        // stack: nftables egress drops are reported back to the kernel's TCP (it sends again, not a loss),
        // so the link itself discards the kernel's packets as well.
        await kernel.SetNftLossAsync(LossPercent);
        kernel.Link.ReadLossPercent = LossPercent;

        await using var listener = Listen(kernel, 8081);
        using var client = kernel.CreateKernelSocket(SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync().AsTask();
        await client.ConnectAsync(new IPEndPoint(kernel.StackAddress, 8081)).Within(Limit, () => $"kernel connect under loss\n{kernel.Describe()}");
        await using var server = await accept.Within(Limit, "accept");
        using var kernelStream = new NetworkStream(client, ownsSocket: false);

        // Both directions at once, each half-closed at its end.
        var down = TcpTransfer.SendAsync(server, Size, seed: 3, afterLastWrite: () => server.ShutdownSendAsync().AsTask());
        var up = TcpTransfer.SendAsync(kernelStream, Size, seed: 4, afterLastWrite: () => { client.Shutdown(SocketShutdown.Send); return Task.CompletedTask; });
        var downReceived = TcpTransfer.ReceiveAsync(kernelStream);
        var upReceived = TcpTransfer.ReceiveAsync(server);
        await Task.WhenAll(down, up, downReceived, upReceived).Within(BulkLimit, () => $"64 MiB each way under {LossPercent}% loss\n{Describe(server)}\n{kernel.Describe()}");
        TcpTransfer.AssertSame(await down, await downReceived, "stack to kernel under loss");
        TcpTransfer.AssertSame(await up, await upReceived, "kernel to stack under loss");

        // The loss was real: packets went missing both ways and our sender recovered by retransmitting.
        var counters = server.Connection.Counters;
        Assert.True(kernel.Link.ReadDropped > 0, kernel.Describe());
        Assert.True(counters.Retransmissions > 0, Describe(server));
        output.WriteLine($"{LossPercent}% loss each way, both at once: to kernel {await downReceived}; to stack {await upReceived}; link dropped {kernel.Link.ReadDropped} of the kernel's packets; {Describe(server)}");
        output.WriteLine(await kernel.Namespace.ExecCheckAsync("nft", "list", "ruleset"));
    }

    [ExternalFact("ip", "sh")]
    public async Task Stack_dials_a_kernel_listener_and_data_crosses_both_ways_at_once()
    {
        const long Size = 32L << 20;
        await using var kernel = await KernelPeer.CreateAsync();
        using var kernelListener = kernel.CreateKernelSocket(SocketType.Stream, ProtocolType.Tcp);
        kernelListener.Bind(new IPEndPoint(kernel.KernelAddress, 0));
        kernelListener.Listen();
        int port = ((IPEndPoint)kernelListener.LocalEndPoint!).Port;

        var accept = kernelListener.AcceptAsync();
        await using var client = await DialAsync(kernel, port).Within(Limit, () => $"dial\n{kernel.Describe()}");
        using var accepted = await accept.Within(Limit, "kernel accept");
        using var kernelStream = new NetworkStream(accepted, ownsSocket: false);
        Assert.Equal(new IPEndPoint(kernel.KernelAddress, port), client.RemoteEndPoint);
        Assert.Equal(client.LocalEndPoint, accepted.RemoteEndPoint);

        var up = TcpTransfer.SendAsync(client, Size, seed: 5, afterLastWrite: () => client.ShutdownSendAsync().AsTask());
        var down = TcpTransfer.SendAsync(kernelStream, Size, seed: 6, afterLastWrite: () => { accepted.Shutdown(SocketShutdown.Send); return Task.CompletedTask; });
        var upReceived = TcpTransfer.ReceiveAsync(kernelStream);
        var downReceived = TcpTransfer.ReceiveAsync(client);
        await Task.WhenAll(up, down, upReceived, downReceived).Within(BulkLimit, () => $"32 MiB each way at once\n{Describe(client)}\n{kernel.Describe()}");
        TcpTransfer.AssertSame(await up, await upReceived, "stack to kernel listener");
        TcpTransfer.AssertSame(await down, await downReceived, "kernel listener to stack");

        // Both sides sent FIN and saw the other's: ours was acknowledged, so the connection ends.
        await TaskTimeouts.Until(() => client.Connection.State is TcpState.TimeWait or TcpState.Closed, Limit, $"our side finishing the close ({client.Connection.State})");
        output.WriteLine($"to kernel {await upReceived}; to stack {await downReceived}; {Describe(client)}");
    }

    [ExternalFact("ip", "sh", "ss")]
    public async Task Half_closes_in_both_orders_are_seen_by_each_side_and_end_in_the_right_states()
    {
        await using var kernel = await KernelPeer.CreateAsync();
        await using var listener = Listen(kernel, 8082);
        var request = new byte[100_000];
        var response = new byte[1_000_000];
        Random.Shared.NextBytes(request);
        Random.Shared.NextBytes(response);

        // 1. The kernel half-closes first: we read to its FIN, then still send our response and close.
        using (var client = kernel.CreateKernelSocket(SocketType.Stream, ProtocolType.Tcp))
        {
            var accept = listener.AcceptAsync().AsTask();
            await client.ConnectAsync(new IPEndPoint(kernel.StackAddress, 8082)).Within(Limit, "connect 1");
            await using var server = await accept.Within(Limit, "accept 1");
            using var kernelStream = new NetworkStream(client, ownsSocket: false);
            await kernelStream.WriteAsync(request);
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal(request, await TcpTransfer.ReadToEndAsync(server).Within(Limit, "our read to the kernel's FIN"));
            Assert.Equal(TcpState.CloseWait, server.Connection.State);

            await server.WriteAsync(response);
            await server.ShutdownSendAsync();
            Assert.Equal(response, await TcpTransfer.ReadToEndAsync(kernelStream).Within(Limit, "the kernel's read to our FIN"));

            // We closed second: LAST_ACK, then CLOSED on the kernel's ACK; the kernel waits in TIME_WAIT.
            await TaskTimeouts.Until(() => server.Connection.State == TcpState.Closed, Limit, $"our side closing ({server.Connection.State})");
            var local = (IPEndPoint)client.LocalEndPoint!;
            client.Dispose();
            var states = await KernelStatesAsync(kernel, local.Port);
            Assert.True(states.Contains("TIME-WAIT"), $"kernel socket states for port {local.Port}: {states}");
        }

        // 2. We half-close first: the kernel reads to our FIN and still sends its response.
        using (var client = kernel.CreateKernelSocket(SocketType.Stream, ProtocolType.Tcp))
        {
            var accept = listener.AcceptAsync().AsTask();
            await client.ConnectAsync(new IPEndPoint(kernel.StackAddress, 8082)).Within(Limit, "connect 2");
            await using var server = await accept.Within(Limit, "accept 2");
            using var kernelStream = new NetworkStream(client, ownsSocket: false);
            await server.WriteAsync(request);
            await server.ShutdownSendAsync();
            Assert.Equal(request, await TcpTransfer.ReadToEndAsync(kernelStream).Within(Limit, "the kernel's read to our FIN"));
            await TaskTimeouts.Until(() => server.Connection.State == TcpState.FinWait2, Limit, $"our FIN acknowledged ({server.Connection.State})");

            await kernelStream.WriteAsync(response);
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal(response, await TcpTransfer.ReadToEndAsync(server).Within(Limit, "our read to the kernel's FIN"));

            // We closed first: TIME_WAIT here, and the kernel's socket is gone once our ACK arrived.
            Assert.Equal(TcpState.TimeWait, server.Connection.State);
            var local = (IPEndPoint)client.LocalEndPoint!;
            client.Dispose();
            var states = await KernelStatesAsync(kernel, local.Port);
            Assert.True(states.Length == 0, $"kernel socket states for port {local.Port}: {states}");
        }

        Assert.Equal(0, kernel.Link.WriteErrors);
        Assert.Equal(0, kernel.Drops.Get(DropReason.MalformedPacket));
    }

    [ExternalFact("ip", "sh")]
    public async Task Our_abort_resets_the_kernel_and_the_kernels_reset_fails_our_read()
    {
        await using var kernel = await KernelPeer.CreateAsync();
        await using var listener = Listen(kernel, 8083);

        // Our Abort: the kernel's pending receive fails with ECONNRESET.
        using (var client = kernel.CreateKernelSocket(SocketType.Stream, ProtocolType.Tcp))
        {
            var accept = listener.AcceptAsync().AsTask();
            await client.ConnectAsync(new IPEndPoint(kernel.StackAddress, 8083)).Within(Limit, "connect");
            var server = await accept.Within(Limit, "accept");
            await server.WriteAsync(new byte[] { 1, 2, 3 });
            var first = new byte[3];
            Assert.Equal(3, await client.ReceiveAsync(first, SocketFlags.None).Within(Limit, "first bytes"));
            var pending = client.ReceiveAsync(new byte[16], SocketFlags.None);
            server.Abort();
            var reset = await Assert.ThrowsAsync<SocketException>(() => pending.Within(Limit, "the kernel seeing our RST"));
            Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
            Assert.Equal(1, server.Connection.Counters.ResetsSent);
            await server.DisposeAsync();
        }

        // The kernel resets (SO_LINGER 0 then close): our waiting read and later writes fail with ConnectionReset.
        using (var client = kernel.CreateKernelSocket(SocketType.Stream, ProtocolType.Tcp))
        {
            var accept = listener.AcceptAsync().AsTask();
            await client.ConnectAsync(new IPEndPoint(kernel.StackAddress, 8083)).Within(Limit, "connect");
            await using var server = await accept.Within(Limit, "accept");
            var pending = server.ReadAsync(new byte[16]).AsTask();
            client.LingerState = new LingerOption(true, 0);
            client.Close();
            var ex = await Assert.ThrowsAsync<IOException>(() => pending.Within(Limit, "our read seeing the kernel's RST"));
            var socketError = Assert.IsType<SocketException>(ex.InnerException);
            Assert.Equal(SocketError.ConnectionReset, socketError.SocketErrorCode);
            Assert.Contains("reset", ex.Message, StringComparison.OrdinalIgnoreCase);
            var write = await Assert.ThrowsAsync<IOException>(() => server.WriteAsync(new byte[10]).AsTask());
            Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(write.InnerException).SocketErrorCode);
            Assert.Equal(1, server.Connection.Counters.ResetsReceived);
            Assert.Equal(TcpState.Closed, server.Connection.State);
        }
    }

    [ExternalFact("ip", "sh")]
    public async Task Closed_ports_refuse_in_both_directions()
    {
        await using var kernel = await KernelPeer.CreateAsync();

        // Our dial to a kernel port nobody listens on: the kernel's RST becomes ConnectionRefused.
        var refused = await Assert.ThrowsAsync<SocketException>(() => DialAsync(kernel, 9).Within(Limit, "refused dial"));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.Contains("refused", refused.Message, StringComparison.OrdinalIgnoreCase);

        // The kernel's connect to a closed port of ours: our RST gives it ECONNREFUSED.
        using var client = kernel.CreateKernelSocket(SocketType.Stream, ProtocolType.Tcp);
        var ex = await Assert.ThrowsAsync<SocketException>(() => client.ConnectAsync(new IPEndPoint(kernel.StackAddress, 9)).Within(Limit, "kernel connect to a closed port"));
        Assert.Equal(SocketError.ConnectionRefused, ex.SocketErrorCode);
        Assert.Equal(1, kernel.Drops.Get(DropReason.TcpNoConnection));
        Assert.Equal(0, kernel.Stack.Tcp.ConnectionCount);
    }

    [ExternalFact("ip", "sh")]
    public async Task Mss_window_scale_timestamps_and_sack_are_negotiated_with_the_kernel_both_ways()
    {
        await using var kernel = await KernelPeer.CreateAsync();
        int expectedSegment = kernel.Link.Mtu - 40 - 12; // IPv4 + TCP headers, timestamp option

        // Kernel dials us.
        await using var listener = Listen(kernel, 8084);
        using var client = kernel.CreateKernelSocket(SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync().AsTask();
        await client.ConnectAsync(new IPEndPoint(kernel.StackAddress, 8084)).Within(Limit, "connect");
        await using var server = await accept.Within(Limit, "accept");
        AssertNegotiated(server, client, expectedSegment);

        // We dial the kernel.
        using var kernelListener = kernel.CreateKernelSocket(SocketType.Stream, ProtocolType.Tcp);
        kernelListener.Bind(new IPEndPoint(kernel.KernelAddress, 0));
        kernelListener.Listen();
        int port = ((IPEndPoint)kernelListener.LocalEndPoint!).Port;
        var kernelAccept = kernelListener.AcceptAsync();
        await using var dialled = await DialAsync(kernel, port).Within(Limit, "dial");
        using var accepted = await kernelAccept.Within(Limit, "kernel accept");
        AssertNegotiated(dialled, accepted, expectedSegment);
    }

    [ExternalFact("ip", "sh")]
    public async Task A_kernel_reader_that_stops_closes_our_window_our_writes_stall_with_bounded_memory_then_complete()
    {
        const long Size = 8L << 20;
        const int SendBuffer = 256 * 1024;
        await using var kernel = await KernelPeer.CreateAsync();
        await using var listener = Listen(kernel, 8085, new MeshTcpListenerOptions { Connection = new MeshTcpOptions { MaxSendBufferSize = SendBuffer } });
        using var client = kernel.CreateKernelSocket(SocketType.Stream, ProtocolType.Tcp);
        client.ReceiveBufferSize = 64 * 1024; // before connect: the kernel's window stays small
        var accept = listener.AcceptAsync().AsTask();
        await client.ConnectAsync(new IPEndPoint(kernel.StackAddress, 8085)).Within(Limit, "connect");
        await using var server = await accept.Within(Limit, "accept");

        // The kernel reads nothing: its buffer fills, it advertises a zero window, our sender probes it.
        var send = TcpTransfer.SendAsync(server, Size, seed: 7, afterLastWrite: () => server.ShutdownSendAsync().AsTask());
        var connection = server.Connection;
        await TaskTimeouts.Until(() => connection.Counters.WindowProbes >= 2, Limit, $"zero-window probes toward the stalled kernel reader ({Describe(server)})");
        Assert.False(send.IsCompleted, "8 MiB cannot fit in a 256 KiB send buffer plus a 128 KiB kernel buffer: the writer must be waiting");
        long sentBeforeRead = connection.Counters.BytesSent;
        long memoryWhileStalled = connection.BufferMemory;
        Assert.True(sentBeforeRead < Size, $"{sentBeforeRead} bytes accepted from the writer");
        Assert.True(memoryWhileStalled is > 0 and <= SendBuffer + TcpConstants.InitialReceiveBuffer, $"buffer memory {memoryWhileStalled} while stalled");
        Assert.Equal(TcpState.Established, connection.State);

        // The kernel reads again: the window opens, the writer completes, every byte arrives once.
        using var kernelStream = new NetworkStream(client, ownsSocket: false);
        var received = await TcpTransfer.ReceiveAsync(kernelStream).Within(BulkLimit, () => $"the kernel draining the stalled connection\n{Describe(server)}");
        TcpTransfer.AssertSame(await send.Within(Limit, "our write completing"), received, "after the window reopened");
        output.WriteLine($"stalled with {sentBeforeRead} bytes accepted, {connection.Counters.WindowProbes} window probes, buffer memory {memoryWhileStalled} while stalled");
    }

    [ExternalFact("ip", "sh", "ss")]
    public async Task Our_reader_that_stops_closes_the_kernels_window_its_writes_stall_with_bounded_memory_then_complete()
    {
        const long Size = 8L << 20;
        const int ReceiveBuffer = 256 * 1024;
        await using var kernel = await KernelPeer.CreateAsync();
        await using var listener = Listen(kernel, 8086, new MeshTcpListenerOptions { Connection = new MeshTcpOptions { MaxReceiveBufferSize = ReceiveBuffer } });
        using var client = kernel.CreateKernelSocket(SocketType.Stream, ProtocolType.Tcp);
        client.SendBufferSize = 64 * 1024; // before connect: a fixed send buffer (the kernel doubles it), no autotuning
        var accept = listener.AcceptAsync().AsTask();
        await client.ConnectAsync(new IPEndPoint(kernel.StackAddress, 8086)).Within(Limit, "connect");
        await using var server = await accept.Within(Limit, "accept");
        var connection = server.Connection;
        int kernelPort = ((IPEndPoint)client.LocalEndPoint!).Port;

        // Our application reads nothing: our receive buffer fills, we advertise a zero window, and
        // the kernel's sender stops with its send queue full: its send window (TCP_INFO) is below a
        // segment, bytes wait unsent, and it probes the window (the persist timer in ss).
        using var kernelStream = new NetworkStream(client, ownsSocket: false);
        var send = TcpTransfer.SendAsync(kernelStream, Size, seed: 8, afterLastWrite: () => { client.Shutdown(SocketShutdown.Send); return Task.CompletedTask; });
        long Room() => connection.ReceiveBufferCapacity - connection.Counters.BytesReceived;
        await TaskTimeouts.Until(
            () => Room() < connection.SegmentSize && KernelSendState.Read(client) is { Window: var w, NotSent: > 0 } && w < connection.SegmentSize,
            Limit,
            "our buffer filling to less than a segment free and the kernel's send window closing with bytes unsent");
        var kernelState = KernelSendState.Read(client);
        string ss = await KernelSocketAsync(kernel, kernelPort, s => s.Contains("persist", StringComparison.Ordinal), () => $"the kernel probing our zero window ({kernelState}; {Describe(server)})");
        long sendQueue = long.Parse(ss.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture); // with a state filter: Recv-Q Send-Q local peer ...

        Assert.False(send.IsCompleted, $"8 MiB cannot fit in our 256 KiB window plus a 128 KiB kernel send buffer: the kernel's writer must be blocked\n{ss}");
        Assert.True(sendQueue > 0, $"the kernel's send queue holds the unsent bytes: {ss}");
        long receivedWhileStalled = connection.Counters.BytesReceived;
        long memoryWhileStalled = connection.BufferMemory;
        Assert.True(receivedWhileStalled is > 0 and <= ReceiveBuffer, $"{receivedWhileStalled} bytes taken in while our reader stopped");
        Assert.True(memoryWhileStalled is > 0 and <= ReceiveBuffer, $"buffer memory {memoryWhileStalled} while stalled, maximum receive buffer {ReceiveBuffer}");
        Assert.Equal(TcpState.Established, connection.State);

        // Our application reads again: the window opens, the kernel's writer completes, every byte arrives once.
        var received = await TcpTransfer.ReceiveAsync(server).Within(BulkLimit, () => $"our reader draining the stalled connection\n{Describe(server)}\n{kernel.Describe()}");
        TcpTransfer.AssertSame(await send.Within(Limit, "the kernel's write completing"), received, "after our window reopened");
        Assert.True(connection.BufferMemory <= ReceiveBuffer, $"buffer memory {connection.BufferMemory} after the transfer");
        output.WriteLine($"stalled with {receivedWhileStalled} bytes in our buffer (memory {memoryWhileStalled}), kernel {kernelState}, send queue {sendQueue} bytes; ss: {ss.Trim()}; then {received}; {Describe(server)}");
    }

    /// <summary>Polls <c>ss -tnoiH</c> in the namespace for the kernel's end of a connection until <paramref name="condition"/> holds on its line; bounded by <see cref="Limit"/>.</summary>
    private static async Task<string> KernelSocketAsync(KernelPeer kernel, int kernelPort, Func<string, bool> condition, Func<string> what)
    {
        var deadline = DateTime.UtcNow + Limit;
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            last = await kernel.Namespace.ExecCheckAsync("ss", "-tnoiH", "state", "established", $"( sport = :{kernelPort} )");
            if (condition(last))
            {
                return last;
            }

            await Task.Delay(20);
        }

        Assert.Fail($"{what()} did not happen within {Limit}; last ss output: {last}");
        return last;
    }

    /// <summary>Our side's view of the options and the kernel's (its TCP_INFO) agree: MSS, both scale factors, timestamps, SACK.</summary>
    private void AssertNegotiated(MeshTcpStream stream, Socket kernelSocket, int expectedSegment)
    {
        var (sack, timestamps, sendShift, receiveShift) = stream.Connection.Negotiated;
        var info = KernelTcpInfo.Read(kernelSocket);
        output.WriteLine($"kernel: {info}; ours: sack {sack}, ts {timestamps}, wscale send {sendShift} receive {receiveShift}, segment {stream.Connection.SegmentSize}");
        Assert.True(sack, "SACK not negotiated");
        Assert.True(timestamps, "timestamps not negotiated");
        Assert.True(sendShift > 0, "the kernel offered no window scale");
        Assert.True(receiveShift > 0, "we offered no window scale");
        Assert.Equal(expectedSegment, stream.Connection.SegmentSize);

        Assert.True(info.Sack, $"the kernel has no SACK: {info}");
        Assert.True(info.Timestamps, $"the kernel has no timestamps: {info}");
        Assert.True(info.WindowScaling, $"the kernel has no window scaling: {info}");
        Assert.Equal(receiveShift, info.SendShift); // what the kernel applies to our window is the shift we announced
        Assert.Equal(sendShift, info.ReceiveShift);
        Assert.Equal(expectedSegment, info.SendMss);
    }

    private static async Task<string> KernelStatesAsync(KernelPeer kernel, int port)
    {
        string ss = await kernel.Namespace.ExecCheckAsync("ss", "-tanH", $"( sport = :{port} or dport = :{port} )");
        return string.Join(' ', ss.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]));
    }

    private static MeshTcpListener Listen(KernelPeer kernel, int port, MeshTcpListenerOptions? options = null) =>
        new(kernel.Stack.Tcp.Listen((ushort)port, options ?? new MeshTcpListenerOptions()), new IPEndPoint(kernel.StackAddress, port));

    private static async Task<MeshTcpStream> DialAsync(KernelPeer kernel, int port, MeshTcpOptions? options = null) =>
        new(await kernel.Stack.Tcp.ConnectAsync(kernel.KernelAddressValue, (ushort)port, options ?? MeshTcpOptions.Default, CancellationToken.None));

    private static string Describe(MeshTcpStream stream)
    {
        var c = stream.Connection;
        var n = c.Counters;
        return $"connection {c.State}: segments sent {n.SegmentsSent} received {n.SegmentsReceived}, retransmissions {n.Retransmissions} (fast {n.FastRetransmits}, timeouts {n.Timeouts}, lost retransmissions {n.LostRetransmissions}, tail loss probes {n.TailLossProbes}), dup ACKs {n.DuplicateAcks}, window probes {n.WindowProbes}, cwnd {c.CongestionWindow}, RTO {c.RetransmissionTimeout.TotalMilliseconds:0} ms, receive buffer {c.ReceiveBufferCapacity}";
    }

    /// <summary>The kernel sender's view from <c>struct tcp_info</c>: tcpi_snd_wnd (the window we advertised, scaled; offset 228, Linux 5.4+) and tcpi_notsent_bytes (offset 144).</summary>
    private readonly record struct KernelSendState(long Window, long NotSent)
    {
        private const int TcpInfo = 11;

        public static KernelSendState Read(Socket socket)
        {
            Span<byte> info = stackalloc byte[232];
            int length = socket.GetRawSocketOption((int)ProtocolType.Tcp, TcpInfo, info);
            Assert.True(length >= 232, $"TCP_INFO returned {length} bytes: this kernel has no tcpi_snd_wnd");
            return new KernelSendState(BinaryPrimitives.ReadUInt32LittleEndian(info[228..]), BinaryPrimitives.ReadUInt32LittleEndian(info[144..]));
        }
    }

    /// <summary>The head of Linux's <c>struct tcp_info</c> (getsockopt TCP_INFO) that says what was negotiated.</summary>
    private readonly record struct KernelTcpInfo(bool Timestamps, bool Sack, bool WindowScaling, int SendShift, int ReceiveShift, int SendMss, int ReceiveMss)
    {
        private const int TcpInfo = 11;

        public static KernelTcpInfo Read(Socket socket)
        {
            Span<byte> info = stackalloc byte[104];
            int length = socket.GetRawSocketOption((int)ProtocolType.Tcp, TcpInfo, info);
            Assert.True(length >= 24, $"TCP_INFO returned {length} bytes");

            // u8 state, ca_state, retransmits, probes, backoff, options, snd_wscale:4 | rcv_wscale:4, ...; u32 rto, ato, snd_mss, rcv_mss
            byte options = info[5];
            return new KernelTcpInfo(
                (options & 1) != 0,
                (options & 2) != 0,
                (options & 4) != 0,
                info[6] & 0xF,
                info[6] >> 4,
                BinaryPrimitives.ReadInt32LittleEndian(info[16..]),
                BinaryPrimitives.ReadInt32LittleEndian(info[20..]));
        }
    }
}
