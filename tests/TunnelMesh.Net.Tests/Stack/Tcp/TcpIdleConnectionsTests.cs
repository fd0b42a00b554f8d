using TunnelMesh.Net.Stack.Tcp;
using TunnelMesh.Net.Tests.Support;
using Xunit.Abstractions;

namespace TunnelMesh.Net.Tests.Stack.Tcp;

/// <summary>
/// Issue 3's idle-connection bound: 10,000 concurrent connections between two nodes hold, each
/// still carries data afterwards, and the managed memory they cost is measured and reported.
/// </summary>
[Collection(nameof(TcpIdleConnectionsTests))]
public sealed class TcpIdleConnectionsTests(ITestOutputHelper output)
{
    private const int Count = 10_000;
    private const int Batch = 100;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Ten_thousand_idle_connections_hold_and_cost_little()
    {
        await using var pair = await NodePair.StartAsync();
        await using var listener = await pair.B.ListenAsync(7000, new MeshTcpListenerOptions { Backlog = Batch * 2 });
        var clients = new MeshTcpStream[Count];
        var servers = new MeshTcpStream[Count];
        long before = SettledMemory();

        await Task.Run(async () =>
        {
            for (int start = 0; start < Count; start += Batch)
            {
                var accepts = new Task<MeshTcpStream>[Batch];
                var dials = new Task<MeshTcpStream>[Batch];
                for (int i = 0; i < Batch; i++)
                {
                    dials[i] = pair.A.DialAsync(NodePair.IpB, 7000);
                }

                for (int i = 0; i < Batch; i++)
                {
                    accepts[i] = listener.AcceptAsync().AsTask();
                }

                (await Task.WhenAll(dials)).CopyTo(clients, start);
                (await Task.WhenAll(accepts)).CopyTo(servers, start);
            }
        }).Within(Limit, () => $"opening {Count} connections (opened {clients.Count(c => c != null)})");

        long after = SettledMemory();
        double perPair = (after - before) / (double)Count;
        output.WriteLine($"{Count} idle connections: {(after - before) / 1048576.0:0.0} MiB managed for both ends, {perPair:0} B per connection pair ({perPair / 2:0} B per endpoint)");

        Assert.All(clients, c => Assert.Equal(TcpState.Established, c.Connection.State));
        Assert.All(servers, s => Assert.Equal(TcpState.Established, s.Connection.State));
        Assert.Equal(Count, clients.Select(c => c.LocalEndPoint.Port).Distinct().Count());

        // Idle means no buffer held: the rings allocate on first use and trim when drained.
        Assert.All(clients, c => Assert.Equal(0, c.Connection.BufferMemory));

        // Accept order need not follow dial order: pair each client with the server end it reached.
        var byRemote = servers.ToDictionary(s => s.RemoteEndPoint);
        servers = clients.Select(c => byRemote[c.LocalEndPoint]).ToArray();

        // A sample of connections (first, last, every 97th) still carries data.
        var buffer = new byte[1];
        for (int i = 0; i < Count; i += i == Count - 1 ? 1 : Math.Min(97, Count - 1 - i))
        {
            await clients[i].WriteAsync(new[] { (byte)i });
            int index = i;
            Assert.Equal(1, await servers[i].ReadAsync(buffer).AsTask().Within(Limit, () =>
                $"read on connection {index}: client {clients[index].Connection.State} {clients[index].Connection.DebugState}; " +
                $"server {servers[index].Connection.State} {servers[index].Connection.DebugState}; " +
                $"drops A {string.Join(',', pair.A.Drops.Snapshot())} B {string.Join(',', pair.B.Drops.Snapshot())}"));
            Assert.Equal((byte)i, buffer[0]);
            if (i == Count - 1)
            {
                break;
            }
        }

        // Idle memory is small: a generous bound that a per-connection buffer (64 KiB) would break.
        Assert.True(perPair < 16 * 1024, $"{perPair:0} B per idle connection pair");

        foreach (var c in clients)
        {
            c.Abort();
        }

        // The resets arrive: a server end reading after its peer aborted fails instead of hanging.
        await Assert.ThrowsAnyAsync<IOException>(() => servers[Count - 1].ReadAsync(buffer).AsTask().Within(Limit, "read after reset"));
        foreach (var s in servers)
        {
            await s.DisposeAsync();
        }
    }

    private static long SettledMemory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}

/// <summary>The idle-connection test runs alone, so other tests' allocations do not blur the memory it measures.</summary>
[CollectionDefinition(nameof(TcpIdleConnectionsTests), DisableParallelization = true)]
public sealed class TcpIdleConnectionsCollection;
