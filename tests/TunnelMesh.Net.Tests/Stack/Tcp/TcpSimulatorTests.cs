using System.Diagnostics;
using System.Security.Cryptography;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.Transport;
using Xunit.Abstractions;

namespace TunnelMesh.Net.Tests.Stack.Tcp;

/// <summary>
/// The seeded network simulator (smoltcp's netsim, here through the whole node): two MeshNodes over
/// loopback UDP, each behind a fault-injecting transport, move 16 MiB each way at once through one
/// TCP connection under a grid of loss × reordering × duplication. What arrives must hash equal to
/// what was sent. Faults start after the WireGuard and TCP handshakes, so only the data phase is
/// disturbed (handshake retries are WireGuard's 5-second timer, tested elsewhere).
/// </summary>
public sealed class TcpSimulatorTests(ITestOutputHelper output)
{
    private const int Size = 16 << 20;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);

    public static TheoryData<int, int, int> Grid()
    {
        var data = new TheoryData<int, int, int>();
        var only = Environment.GetEnvironmentVariable("SIM_CELLS"); // "loss,reorder,dup;..." runs chosen cells only (reproducing one)
        if (only != null)
        {
            foreach (var cell in only.Split(';'))
            {
                var p = cell.Split(',').Select(int.Parse).ToArray();
                data.Add(p[0], p[1], p[2]);
            }

            return data;
        }

        foreach (int loss in new[] { 0, 1, 5, 10 })
        {
            foreach (int reorder in new[] { 0, 3 })
            {
                foreach (int duplicate in new[] { 0, 2 })
                {
                    data.Add(loss, reorder, duplicate);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Grid))]
    public async Task Sixteen_mebibytes_each_way_arrive_intact(int lossPercent, int reorderPercent, int duplicatePercent)
    {
        int seed = (lossPercent * 10_000) + (reorderPercent * 100) + duplicatePercent + 17;
        FaultInjectingTransport? faultsA = null;
        FaultInjectingTransport? faultsB = null;
        await using var pair = await NodePair.StartAsync(
            transportA: (o, pool, drops) => faultsA = Faulty(o, pool, drops, seed),
            transportB: (o, pool, drops) => faultsB = Faulty(o, pool, drops, seed + 1));
        await using var listener = await pair.B.ListenAsync(5001);
        var accepted = listener.AcceptAsync().AsTask();
        await using var client = await pair.A.DialAsync(NodePair.IpB, 5001).Within(Limit, "dial");
        await using var server = await accepted.Within(Limit, "accept");
        foreach (var f in new[] { faultsA!, faultsB! })
        {
            f.DropProbability = lossPercent / 100.0;
            f.ReorderProbability = reorderPercent / 100.0;
            f.DuplicateProbability = duplicatePercent / 100.0;
        }

        var random = new Random(seed);
        var up = new byte[Size];
        var down = new byte[Size];
        random.NextBytes(up);
        random.NextBytes(down);
        var clock = Stopwatch.StartNew();
        var send1 = WriteInChunksAsync(client, up, random.Next());
        var send2 = WriteInChunksAsync(server, down, random.Next());
        var read1 = TcpNodeTests.ReadToEndAsync(server);
        var read2 = TcpNodeTests.ReadToEndAsync(client);
        await Task.WhenAll(send1, send2, read1, read2).Within(Limit, () =>
            $"16 MiB each way at {lossPercent}% loss, {reorderPercent}% reorder, {duplicatePercent}% duplication: " +
            $"A {Describe(client)}; B {Describe(server)}; faults A {faultsA!.SendStatistics}, B {faultsB!.SendStatistics}; " +
            $"drops A {string.Join(',', pair.A.Drops.Snapshot())} B {string.Join(',', pair.B.Drops.Snapshot())}");

        Assert.Equal(SHA256.HashData(up), SHA256.HashData(await read1));
        Assert.Equal(SHA256.HashData(down), SHA256.HashData(await read2));
        var a = client.Connection.Counters;
        var b = server.Connection.Counters;
        output.WriteLine($"{lossPercent}% loss {reorderPercent}% reorder {duplicatePercent}% dup: {clock.Elapsed.TotalSeconds:0.00} s; " +
            $"A retransmissions {a.Retransmissions} fast {a.FastRetransmits} timeouts {a.Timeouts}; B retransmissions {b.Retransmissions} fast {b.FastRetransmits} timeouts {b.Timeouts}; " +
            $"faults A {faultsA!.SendStatistics} B {faultsB!.SendStatistics}");
        if (lossPercent > 0)
        {
            Assert.True(faultsA!.SendStatistics.Dropped > 0 && faultsB!.SendStatistics.Dropped > 0, "the simulator really dropped datagrams");
            Assert.True(a.Retransmissions + b.Retransmissions > 0, "losses were repaired by retransmission");
        }
    }

    private static FaultInjectingTransport Faulty(MeshNodeOptions options, PacketBufferPool pool, DropCounters drops, int seed) =>
        new(new UdpTransport(new UdpTransportOptions { BindAddress = options.ListenAddress, Port = options.ListenPort, Pool = pool, Drops = drops }), seed, pool);

    /// <summary>Writes in chunks of random sizes (1 byte to 256 KiB) so segment boundaries vary, then half-closes.</summary>
    private static async Task WriteInChunksAsync(MeshTcpStream stream, byte[] data, int seed)
    {
        var random = new Random(seed);
        int offset = 0;
        while (offset < data.Length)
        {
            int n = Math.Min(data.Length - offset, random.Next(4) == 0 ? random.Next(1, 2000) : random.Next(1, 256 << 10));
            await stream.WriteAsync(data.AsMemory(offset, n));
            offset += n;
        }

        await stream.ShutdownSendAsync();
    }

    private static string Describe(MeshTcpStream stream)
    {
        var c = stream.Connection;
        var n = c.Counters;
        return $"state {c.State} cwnd {c.CongestionWindow} rto {c.RetransmissionTimeout.TotalMilliseconds} ms {c.DebugState} sent {n.BytesSent} received {n.BytesReceived} retransmissions {n.Retransmissions} timeouts {n.Timeouts}";
    }
}
