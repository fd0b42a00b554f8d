using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace TunnelMesh.Net.EndToEnd;

/// <summary>The 'run' role: makes the topology, starts the server and the client, prints the figures.</summary>
internal static class Orchestrator
{
    public static async Task<int> RunAsync(BenchOptions o, CancellationToken ct)
    {
        await using var topology = await Topology.CreateAsync(o, ct);
        int udpPort = o.UdpPort >= 0 ? o.UdpPort : (topology.SeparateNamespaces ? 51820 : 0);
        Console.WriteLine($"# tunnelmesh-e2e  transport={o.Transport.ToString().ToLowerInvariant()}  {topology.Description}");
        Console.WriteLine($"# {Environment.ProcessorCount} cpu {CpuModel()}, .NET {RuntimeInformation.FrameworkDescription}, gcServer={Environment.GetEnvironmentVariable("DOTNET_gcServer") ?? "0"}, {DateTime.UtcNow:yyyy-MM-ddTHH:mm:ssZ}, load {LoadAverage()}");

        var serverKey = NodePrivateKey.Generate();
        var clientKey = NodePrivateKey.Generate();
        var serverArgs = o.ChildArguments("server");
        serverArgs.AddRange(["--server-address", topology.ServerAddress.ToString(), "--udp-port", udpPort.ToString(CultureInfo.InvariantCulture)]);
        await using var server = ChildProcess.Start("server", topology.ServerNs, serverArgs, new Dictionary<string, string>
        {
            [MeshSetup.PrivateKeyVariable] = serverKey.ToBase64(),
            [MeshSetup.PeerKeyVariable] = clientKey.PublicKey.ToString(),
        });
        int readyPort = await server.WaitReadyAsync(TimeSpan.FromSeconds(60), ct);

        var clientArgs = o.ChildArguments("client");
        clientArgs.AddRange(["--server-address", topology.ServerAddress.ToString(), "--client-address", topology.ClientAddress.ToString()]);
        if (o.Transport == TcpCarrier.Mesh)
        {
            clientArgs.AddRange(["--peer-udp-port", readyPort.ToString(CultureInfo.InvariantCulture)]);
        }

        await using var client = ChildProcess.Start("client", topology.ClientNs, clientArgs, new Dictionary<string, string>
        {
            [MeshSetup.PrivateKeyVariable] = clientKey.ToBase64(),
            [MeshSetup.PeerKeyVariable] = serverKey.PublicKey.ToString(),
        });

        var clientReport = await client.WaitResultAsync(ct);
        var serverReport = await server.WaitResultAsync(ct);
        Print(o, topology, clientReport, serverReport);
        return 0;
    }

    private static void Print(BenchOptions o, Topology topology, ChildReport client, ChildReport server)
    {
        bool mesh = o.Transport == TcpCarrier.Mesh;
        bool separate = topology.SeparateNamespaces;
        int dataPayload = mesh ? 1420 - 20 - 20 - 12 : 1448;
        var summary = new Dictionary<string, object?>
        {
            ["tool"] = "tunnelmesh-e2e",
            ["label"] = o.Label,
            ["transport"] = o.Transport.ToString().ToLowerInvariant(),
            ["mode"] = topology.Mode,
            ["cpus"] = Environment.ProcessorCount,
            ["runtime"] = RuntimeInformation.FrameworkDescription,
            ["gc_server"] = Environment.GetEnvironmentVariable("DOTNET_gcServer") ?? "0",
            ["utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["loadavg_end"] = LoadAverage(),
        };

        // Packets a process moved in a window: the datagrams (mesh) or segments (kernel) its
        // namespace sent plus received. Both processes in one namespace see each other's packets
        // too; there each datagram is counted once out and once in, so half the sum is one side's.
        long Packets(WindowCost w) => (mesh ? w.UdpIn + w.UdpOut : w.TcpInSegs + w.TcpOutSegs) / (separate ? 1 : 2);
        string PacketNote() => mesh ? (separate ? "UDP datagrams of its namespace" : "UDP datagrams of the shared namespace / 2") : (separate ? "TCP segments of its namespace" : "TCP segments of the shared namespace / 2");

        if (client.Stream is { } cs && server.Stream is { } ss)
        {
            double gib = cs.Bytes / (double)(1L << 30);
            double gbps = cs.Bytes * 8 / cs.DataSeconds / 1e9;
            double steadyGbps = ss.SteadyBytes * 8 / ss.Steady.Seconds / 1e9;
            Console.WriteLine();
            Console.WriteLine($"stream   {cs.Bytes / (double)(1 << 20):F0} MiB client->server in {cs.DataSeconds:F2} s: {gbps:F3} Gbit/s (first write to confirmed delivery); steady state {steadyGbps:F3} Gbit/s");
            var sides = new Dictionary<string, object?>();
            foreach (var (name, side) in new[] { ("client", cs), ("server", ss) })
            {
                var w = side.Whole;
                var st = side.Steady;
                long packets = Packets(st);
                long dataSegments = Math.Max(1, side.SteadyBytes / dataPayload);
                double cpuPerGib = w.CpuSeconds / gib;
                Console.WriteLine(
                    $"  {name,-6} cpu {w.CpuSeconds:F2} s (user {w.UserSeconds:F2} + sys {w.SystemSeconds:F2}) = {w.CpuSeconds / w.Seconds * 100:F0}% of a core, {cpuPerGib:F2} cpu-s/GiB; " +
                    $"ctx switches {w.VoluntarySwitches}+{w.InvoluntarySwitches}inv; " +
                    (mesh ? $"UDP buffer drops in its namespace {w.UdpBufferErrors}" : $"kernel TCP retransmitted segments {w.TcpRetransSegs}"));
                Console.WriteLine(
                    $"  {name,-6} steady window {side.SteadyBytes / (double)(1 << 20):F0} MiB: allocated {st.AllocatedBytes / 1024.0:F0} KiB, {Per(st.AllocatedBytes, packets):F2} B/packet ({packets} packets: {PacketNote()}), " +
                    (mesh ? $"{Per(st.AllocatedBytes, dataSegments):F2} B/data segment (~{dataSegments} x {dataPayload} B), " : "") + $"GCs gen0/1/2 {st.Gen0}/{st.Gen1}/{st.Gen2}");
                long outsidePool = st.AllocatedBytes - (st.PoolBuffers * PoolBufferBytes);
                if (mesh)
                {
                    Console.WriteLine(
                        $"  {name,-6} steady window: packet pool grew by {st.PoolBuffers} buffers ({st.PoolBuffers * PoolBufferBytes / 1024.0:F0} KiB; {w.PoolBuffers} in the whole run); " +
                        $"allocated outside the pool {outsidePool / 1024.0:F0} KiB = {Per(outsidePool, packets):F3} B/packet");
                }

                sides[name] = new Dictionary<string, object?>
                {
                    ["cpu_s"] = Round(w.CpuSeconds, 3),
                    ["user_s"] = Round(w.UserSeconds, 3),
                    ["sys_s"] = Round(w.SystemSeconds, 3),
                    ["cpu_pct_of_core"] = Round(w.CpuSeconds / w.Seconds * 100, 1),
                    ["cpu_s_per_gib"] = Round(cpuPerGib, 3),
                    ["ctx_voluntary"] = w.VoluntarySwitches,
                    ["ctx_involuntary"] = w.InvoluntarySwitches,
                    ["udp_buffer_drops"] = w.UdpBufferErrors,
                    ["kernel_tcp_retrans"] = w.TcpRetransSegs,
                    ["steady_alloc_bytes"] = st.AllocatedBytes,
                    ["steady_packets"] = packets,
                    ["alloc_bytes_per_packet"] = Round(Per(st.AllocatedBytes, packets), 3),
                    ["alloc_bytes_per_data_segment"] = mesh ? Round(Per(st.AllocatedBytes, dataSegments), 3) : null,
                    ["steady_pool_buffers_allocated"] = mesh ? st.PoolBuffers : null,
                    ["whole_pool_buffers_allocated"] = mesh ? w.PoolBuffers : null,
                    ["steady_alloc_bytes_outside_pool"] = mesh ? outsidePool : null,
                    ["alloc_bytes_per_packet_outside_pool"] = mesh ? Round(Per(outsidePool, packets), 3) : null,
                    ["steady_gc_gen0"] = st.Gen0,
                    ["steady_gc_gen1"] = st.Gen1,
                    ["steady_gc_gen2"] = st.Gen2,
                    ["whole_gc_gen0"] = w.Gen0,
                    ["whole_gc_gen1"] = w.Gen1,
                    ["whole_gc_gen2"] = w.Gen2,
                };
            }

            double totalCpu = cs.Whole.CpuSeconds + ss.Whole.CpuSeconds;
            Console.WriteLine($"  both   cpu {totalCpu:F2} s, {totalCpu / gib:F2} cpu-s/GiB");
            summary["stream"] = new Dictionary<string, object?>
            {
                ["bytes"] = cs.Bytes,
                ["seconds"] = Round(cs.DataSeconds, 4),
                ["gbit_s"] = Round(gbps, 4),
                ["steady_gbit_s"] = Round(steadyGbps, 4),
                ["cpu_s_per_gib_both"] = Round(totalCpu / gib, 3),
                ["client"] = sides["client"],
                ["server"] = sides["server"],
            };
        }

        if (client.Rr is { Latency: { } lat } cr && server.Rr is { } sr)
        {
            Console.WriteLine();
            Console.WriteLine($"rr       {cr.RoundTrips} round trips of {cr.MessageSize} B (NoDelay, after {o.RoundTripWarmup} warm-up): " +
                $"p50 {lat.P50Us:F1} us, p90 {lat.P90Us:F1}, p99 {lat.P99Us:F1}, p99.9 {lat.P999Us:F1}, mean {lat.MeanUs:F1}, min {lat.MinUs:F1}, max {lat.MaxUs:F1}; {cr.RoundTrips / cr.Window.Seconds:F0} round trips/s");
            var sides = new Dictionary<string, object?>();
            foreach (var (name, side) in new[] { ("client", cr), ("server", sr) })
            {
                var w = side.Window;
                long packets = Packets(w);
                Console.WriteLine(
                    $"  {name,-6} cpu {w.CpuSeconds:F2} s (user {w.UserSeconds:F2} + sys {w.SystemSeconds:F2}), {w.CpuSeconds / side.RoundTrips * 1e6:F1} cpu-us/round trip; " +
                    $"allocated {Per(w.AllocatedBytes, side.RoundTrips):F1} B/round trip, {Per(w.AllocatedBytes, packets):F1} B/packet ({packets} packets), GCs {w.Gen0}/{w.Gen1}/{w.Gen2}");
                sides[name] = new Dictionary<string, object?>
                {
                    ["cpu_s"] = Round(w.CpuSeconds, 3),
                    ["cpu_us_per_rt"] = Round(w.CpuSeconds / side.RoundTrips * 1e6, 2),
                    ["alloc_bytes_per_rt"] = Round(Per(w.AllocatedBytes, side.RoundTrips), 2),
                    ["packets"] = packets,
                    ["alloc_bytes_per_packet"] = Round(Per(w.AllocatedBytes, packets), 3),
                    ["gc_gen0"] = w.Gen0,
                    ["gc_gen1"] = w.Gen1,
                    ["gc_gen2"] = w.Gen2,
                };
            }

            summary["rr"] = new Dictionary<string, object?>
            {
                ["round_trips"] = cr.RoundTrips,
                ["size"] = cr.MessageSize,
                ["p50_us"] = Round(lat.P50Us, 2),
                ["p90_us"] = Round(lat.P90Us, 2),
                ["p99_us"] = Round(lat.P99Us, 2),
                ["p999_us"] = Round(lat.P999Us, 2),
                ["mean_us"] = Round(lat.MeanUs, 2),
                ["min_us"] = Round(lat.MinUs, 2),
                ["max_us"] = Round(lat.MaxUs, 2),
                ["client"] = sides["client"],
                ["server"] = sides["server"],
            };
        }

        if (mesh)
        {
            string Drops(ChildReport r) => r.NodeDrops is { Count: > 0 } d ? string.Join(", ", d.Select(kv => $"{kv.Key} {kv.Value}")) : "none";
            Console.WriteLine();
            Console.WriteLine($"node drops (whole run): client {Drops(client)}; server {Drops(server)}");
            summary["node_drops"] = new Dictionary<string, object?> { ["client"] = client.NodeDrops, ["server"] = server.NodeDrops };
        }

        Console.WriteLine();
        Console.WriteLine(JsonSerializer.Serialize(summary, Json.Options));
    }

    /// <summary>
    /// What one packet buffer costs the GC counter: a pinned 65,632-byte array (64 KiB datagram +
    /// 64 B head room + 32 B tail room, PacketBuffer.Capacity), its 24-byte array header and the
    /// 48-byte PacketBuffer object.
    /// </summary>
    private const long PoolBufferBytes = 65632 + 24 + 48;

    private static double Per(long amount, long count) => count <= 0 ? double.NaN : amount / (double)count;

    private static double Round(double v, int digits) => double.IsFinite(v) ? Math.Round(v, digits) : -1;

    /// <summary>1, 5 and 15 minute load averages: other work on the machine skews every figure.</summary>
    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static string CpuModel()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal))
                {
                    return line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
                }
            }
        }
        catch (IOException)
        {
        }

        return "";
    }
}
