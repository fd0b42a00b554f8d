using System.Diagnostics;
using System.Globalization;
using System.Net;
using TunnelMesh.Net.Server.Tests.EndToEnd;
using TunnelMesh.Net.Server.Tests.Stores;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Server.Tests.Support;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace TunnelMesh.Net.Server.Tests.Relay;

/// <summary>Exists only with <c>TM_BENCH_REPLICAS=1</c> (and PostgreSQL): a benchmark, not a check, and not part of the test suite.</summary>
[XunitTestCaseDiscoverer("TunnelMesh.Net.Server.Tests.Support.OptInBenchmarkDiscoverer", "TunnelMesh.Net.Server.Tests")]
public sealed class ReplicaBenchmarkFactAttribute : FactAttribute, IOptInBenchmark
{
    public ReplicaBenchmarkFactAttribute()
    {
        if (PostgresFactAttribute.ConnectionString is null)
        {
            Skip = "needs PostgreSQL: set TM_TEST_POSTGRES";
        }
    }

    public string Variable => "TM_BENCH_REPLICAS";
}

/// <summary>
/// Relay throughput with both nodes on one replica against nodes on two replicas, in one run (docs/BENCHMARKS.md):
/// nodes a and b on replica 1, c on replica 2, all UDP dropped (as in <see cref="ReplicaRelayEndToEndTests"/>).
/// Each round sends the same size a→b and a→c, alternating which goes first; every transfer's SHA-256 is checked.
/// </summary>
public sealed class ReplicaRelayBenchmark(ITestOutputHelper output)
{
    private const long Size = 64L << 20;
    private const int Rounds = 5;

    [ReplicaBenchmarkFact]
    public async Task Relay_throughput_on_one_replica_and_across_two()
    {
        await using ReplicaCluster cluster = await ReplicaCluster.StartAsync(2);
        ReplicaCluster.Replica one = cluster.Replicas[0], two = cluster.Replicas[1];
        string key = await one.CreateReusableKeyAsync();
        await cluster.LinkedAsync();
        DirectoryInfo root = Directory.CreateTempSubdirectory("tm-replica-bench-");
        var nodes = new List<MeshNode>();
        try
        {
            MeshNode a = await StartAsync(nodes, one, key, "a", root);
            MeshNode b = await StartAsync(nodes, one, key, "b", root);
            MeshNode c = await StartAsync(nodes, two, key, "c", root);
            await KestrelMesh.PeerAsync(a, "b");
            await KestrelMesh.PeerAsync(a, "c");
            await KestrelMesh.PeerAsync(b, "a");
            await KestrelMesh.PeerAsync(c, "a");
            await using MeshTcpListener onB = await b.ListenAsync(7600);
            await using MeshTcpListener onC = await c.ListenAsync(7600);

            // Warm-up: sessions up, routes read.
            await KestrelMesh.TransferAsync(a, "b", onB, 4 << 20, seed: 1);
            await KestrelMesh.TransferAsync(a, "c", onC, 4 << 20, seed: 2);

            var same = new List<double>();
            var across = new List<double>();
            for (int round = 0; round < Rounds; round++)
            {
                bool sameFirst = round % 2 == 0;
                for (int i = 0; i < 2; i++)
                {
                    bool isSame = (i == 0) == sameFirst;
                    var watch = Stopwatch.StartNew();
                    await KestrelMesh.TransferAsync(a, isSame ? "b" : "c", isSame ? onB : onC, Size, seed: 100 + (round * 2) + i);
                    (isSame ? same : across).Add(Size / (1024.0 * 1024.0) / watch.Elapsed.TotalSeconds);
                }
            }

            Assert.True(one.Metrics.Statistics.ForwardedBytes > Rounds * Size);
            string F(IEnumerable<double> v) => string.Join(", ", v.Select(x => x.ToString("F1", CultureInfo.InvariantCulture)));
            double ratio = across.Order().ElementAt(Rounds / 2) / same.Order().ElementAt(Rounds / 2);
            output.WriteLine($"same replica MiB/s: {F(same)}; across replicas MiB/s: {F(across)}; median ratio across/same {ratio.ToString("F2", CultureInfo.InvariantCulture)}");
            output.WriteLine($"replica 1: {one.Metrics.Statistics}; replica 2: {two.Metrics.Statistics}");
        }
        finally
        {
            for (int i = nodes.Count - 1; i >= 0; i--)
            {
                await nodes[i].DisposeAsync();
            }

            root.Delete(recursive: true);
        }
    }

    // UDP dropped by a transport decorator so every byte takes the relay (see ReplicaRelayEndToEndTests).
    private static async Task<MeshNode> StartAsync(List<MeshNode> nodes, ReplicaCluster.Replica replica, string key, string name, DirectoryInfo root)
    {
        var options = new MeshNodeOptions { ControlUrl = replica.Url, AuthKey = key, Hostname = name, StateDirectory = Path.Combine(root.FullName, name) };
        var node = new MeshNode(options, null, null, (_, pool, drops) =>
            new FaultInjectingTransport(new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, Pool = pool, Drops = drops }), seed: 1, pool) { Block = _ => true });
        nodes.Add(node);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await node.StartAsync(cts.Token);
        return node;
    }
}
