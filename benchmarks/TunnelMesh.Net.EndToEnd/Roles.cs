using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;

namespace TunnelMesh.Net.EndToEnd;

/// <summary>One side's figures for the stream test.</summary>
internal sealed record StreamSide(long Bytes, long SteadyBytes, double DataSeconds, WindowCost Whole, WindowCost Steady);

/// <summary>One side's figures for the request/response test; latencies only on the client.</summary>
internal sealed record RrSide(int RoundTrips, int MessageSize, WindowCost Window, LatencySummary? Latency);

internal sealed record LatencySummary(double MinUs, double P50Us, double P90Us, double P99Us, double P999Us, double MaxUs, double MeanUs)
{
    public static LatencySummary From(long[] ticks)
    {
        Array.Sort(ticks);
        double us = 1e6 / Stopwatch.Frequency;
        double At(double q) => ticks[Math.Min(ticks.Length - 1, (int)Math.Ceiling(q * ticks.Length) - 1)] * us;
        return new LatencySummary(ticks[0] * us, At(0.50), At(0.90), At(0.99), At(0.999), ticks[^1] * us, ticks.Average() * us);
    }
}

/// <summary>What a child process reports on its last stdout line ("RESULT {json}").</summary>
/// <param name="NodeDrops">The MeshNode's drop counters by reason at the end (mesh only).</param>
internal sealed record ChildReport(string Role, string Transport, StreamSide? Stream, RrSide? Rr, IReadOnlyDictionary<string, long>? NodeDrops);

/// <summary>The server process: accepts one connection per test, in the order stream, rr.</summary>
internal static class ServerRole
{
    public static async Task<ChildReport> RunAsync(BenchOptions o, IPAddress bind, int udpPort, CancellationToken ct)
    {
        await using IBenchServerEnd end = o.Transport == TcpCarrier.Mesh
            ? await MeshServerEnd.StartAsync(bind, udpPort, o.Port, ct)
            : KernelServerEnd.Start(bind, o.Port);

        // The parent waits for this line before it starts the client.
        Console.Out.WriteLine($"READY {end.ReadyPort}");
        Console.Out.Flush();

        StreamSide? stream = null;
        RrSide? rr = null;
        if (o.RunStream)
        {
            await using var c = await end.AcceptAsync(ct);
            stream = await SinkAsync(c, o.SteadyWarmup, ct);
            Console.Error.WriteLine($"stream: received {stream.Bytes} bytes");
        }

        if (o.RunRr)
        {
            await using var c = await end.AcceptAsync(ct);
            c.NoDelay = true;
            rr = await EchoAsync(c, o, ct);
            Console.Error.WriteLine($"rr: echoed {rr.RoundTrips} messages");
        }

        PoolCounter.Print("server");
        return new ChildReport("server", o.Transport.ToString().ToLowerInvariant(), stream, rr, (end as MeshServerEnd)?.Drops());
    }

    private static async Task<StreamSide> SinkAsync(BenchConnection c, long warmup, CancellationToken ct)
    {
        var buffer = new byte[256 * 1024];
        var start = ProcessSample.Take();
        ProcessSample? steady = null;
        long firstByte = 0;
        long received = 0;
        while (true)
        {
            int n = await c.Stream.ReadAsync(buffer, ct);
            if (n == 0)
            {
                break;
            }

            if (received == 0)
            {
                firstByte = Stopwatch.GetTimestamp();
            }

            received += n;
            if (steady is null && received >= warmup)
            {
                steady = ProcessSample.Take();
                AllocationTrace.Arm();
            }
        }

        var end = ProcessSample.Take();
        AllocationTrace.Report("server");
        BinaryPrimitives.WriteInt64BigEndian(buffer, received);
        await c.Stream.WriteAsync(buffer.AsMemory(0, 8), ct);
        await c.ShutdownSendAsync();
        steady ??= end;
        return new StreamSide(
            received,
            received - warmup,
            received == 0 ? 0 : Stopwatch.GetElapsedTime(firstByte, end.Timestamp).TotalSeconds,
            ProcessSample.Between(start, end),
            ProcessSample.Between(steady.Value, end));
    }

    private static async Task<RrSide> EchoAsync(BenchConnection c, BenchOptions o, CancellationToken ct)
    {
        var buffer = new byte[o.MessageSize];
        ProcessSample start = default;
        int count = 0;
        while (true)
        {
            if (count == o.RoundTripWarmup)
            {
                start = ProcessSample.Take();
            }

            int n = await c.Stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, ct);
            if (n == 0)
            {
                break;
            }

            if (n < buffer.Length)
            {
                throw new IOException($"rr: the client closed in the middle of message {count} ({n} of {buffer.Length} bytes)");
            }

            await c.Stream.WriteAsync(buffer, ct);
            count++;
        }

        var end = ProcessSample.Take();
        if (count < o.RoundTripWarmup + o.RoundTrips)
        {
            throw new IOException($"rr: the client stopped after {count} of {o.RoundTripWarmup + o.RoundTrips} messages");
        }

        return new RrSide(count - o.RoundTripWarmup, o.MessageSize, ProcessSample.Between(start, end), null);
    }
}

/// <summary>The client process: sends the stream, then ping-pongs messages.</summary>
internal static class ClientRole
{
    public static async Task<ChildReport> RunAsync(BenchOptions o, IPAddress bind, IPEndPoint server, CancellationToken ct)
    {
        await using IBenchClientEnd end = o.Transport == TcpCarrier.Mesh
            ? await MeshClientEnd.StartAsync(bind, server, o.Port, ct)
            : new KernelClientEnd(server);

        StreamSide? stream = null;
        RrSide? rr = null;
        if (o.RunStream)
        {
            await using var c = await end.DialAsync(noDelay: false, ct);
            stream = await SendAsync(c, o.Bytes, o.SteadyWarmup, ct);
            Console.Error.WriteLine($"stream: sent {stream.Bytes} bytes in {stream.DataSeconds:F2} s");
        }

        if (o.RunRr)
        {
            await using var c = await end.DialAsync(noDelay: true, ct);
            rr = await PingPongAsync(c, o, ct);
            Console.Error.WriteLine($"rr: {rr.RoundTrips} round trips, p50 {rr.Latency!.P50Us:F1} us");
        }

        PoolCounter.Print("client");
        return new ChildReport("client", o.Transport.ToString().ToLowerInvariant(), stream, rr, (end as MeshClientEnd)?.Drops());
    }

    private static async Task<StreamSide> SendAsync(BenchConnection c, long bytes, long warmup, CancellationToken ct)
    {
        var buffer = new byte[256 * 1024];
        new Random(1).NextBytes(buffer);
        var start = ProcessSample.Take();
        ProcessSample? steady = null;
        long sent = 0;
        while (sent < bytes)
        {
            int n = (int)Math.Min(buffer.Length, bytes - sent);
            await c.Stream.WriteAsync(buffer.AsMemory(0, n), ct);
            sent += n;
            if (steady is null && sent >= warmup)
            {
                steady = ProcessSample.Take();
                AllocationTrace.Arm();
            }
        }

        await c.ShutdownSendAsync();

        // The server answers with the count it received once it has seen our FIN: the time
        // includes delivery of the last byte, not just the copy into our send buffer.
        int got = await c.Stream.ReadAtLeastAsync(buffer.AsMemory(0, 8), 8, throwOnEndOfStream: false, ct);
        var end = ProcessSample.Take();
        AllocationTrace.Report("client");
        if (got < 8)
        {
            throw new IOException($"stream: the server closed without confirming the byte count ({got} of 8 bytes)");
        }

        long confirmed = BinaryPrimitives.ReadInt64BigEndian(buffer);
        if (confirmed != bytes)
        {
            throw new IOException($"stream: sent {bytes} bytes but the server received {confirmed}");
        }

        steady ??= end;
        return new StreamSide(bytes, bytes - warmup, Stopwatch.GetElapsedTime(start.Timestamp, end.Timestamp).TotalSeconds, ProcessSample.Between(start, end), ProcessSample.Between(steady.Value, end));
    }

    private static async Task<RrSide> PingPongAsync(BenchConnection c, BenchOptions o, CancellationToken ct)
    {
        var request = new byte[o.MessageSize];
        var response = new byte[o.MessageSize];
        var ticks = new long[o.RoundTrips];
        var start = default(ProcessSample);

        // One loop, no helper method: an async helper awaited per round trip would allocate its
        // own state machine each time and be counted against the connection.
        for (int i = -o.RoundTripWarmup; i < o.RoundTrips; i++)
        {
            if (i == 0)
            {
                start = ProcessSample.Take();
            }

            long t0 = Stopwatch.GetTimestamp();
            BinaryPrimitives.WriteInt32BigEndian(request, i);
            await c.Stream.WriteAsync(request, ct);
            int n = await c.Stream.ReadAtLeastAsync(response, response.Length, throwOnEndOfStream: false, ct);
            if (n < response.Length || BinaryPrimitives.ReadInt32BigEndian(response) != i)
            {
                throw new IOException($"rr: round trip {i} came back wrong ({n} bytes)");
            }

            if (i >= 0)
            {
                ticks[i] = Stopwatch.GetTimestamp() - t0;
            }
        }

        var end = ProcessSample.Take();
        await c.ShutdownSendAsync();
        int tail = await c.Stream.ReadAsync(response, ct);
        if (tail != 0)
        {
            throw new IOException("rr: the server sent more than it was asked");
        }

        return new RrSide(o.RoundTrips, o.MessageSize, ProcessSample.Between(start, end), LatencySummary.From(ticks));
    }
}
