using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Server.Tests.EndToEnd;

/// <summary>
/// Path switches under a live TCP connection (relay to direct), and what a node does when its network
/// changes: STUN again at once, endpoints reported at once, its peers probed at once.
/// </summary>
public sealed class PathSwitchTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_transfer_in_flight_when_the_path_moves_from_the_relay_to_direct_arrives_intact()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        string key = await mesh.CreateReusableKeyAsync();
        var blocked = new Flag(true);
        var nodePorts = new ConcurrentDictionary<int, bool>();
        var faults = new ConcurrentDictionary<string, FaultInjectingTransport>();
        MeshNode a = await mesh.StartNodeAsync(mesh.NodeOptions("switch-a", key), Blocking("a", blocked, nodePorts, faults));
        MeshNode b = await mesh.StartNodeAsync(mesh.NodeOptions("switch-b", key), Blocking("b", blocked, nodePorts, faults));
        await KestrelMesh.UntilAsync(() => a.GetStatus().FindPeer("switch-b") is not null && b.GetStatus().FindPeer("switch-a") is not null, "both see each other");

        await using MeshTcpListener listener = await b.ListenAsync(7700);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        Task<MeshTcpStream> accepting = listener.AcceptAsync(cts.Token).AsTask();
        await using MeshTcpStream client = await a.DialAsync("switch-b", 7700, cts.Token);
        await using MeshTcpStream server = await accepting;
        Assert.Equal(MeshPeerPath.Relay, a.GetStatus().FindPeer("switch-b")!.Path);

        // 16 MiB: the receiver holds back after the first MiB, so most of it is still to go when the path moves.
        const long Size = 16L << 20;
        var firstMiB = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<TcpTransfer.Outcome> receiving = ReceivePausedAsync(server, Size, 1 << 20, firstMiB, resume.Task, cts.Token);
        Task<TcpTransfer.Outcome> sending = TcpTransfer.SendAsync(client, Size, seed: 7, cancellationToken: cts.Token);
        await firstMiB.Task.WaitAsync(Limit);
        Assert.False(sending.IsCompleted, "the sender still has data to send when the path moves");
        Assert.Equal(MeshPeerPath.Relay, a.GetStatus().FindPeer("switch-b")!.Path);

        // UDP opens: the next probe round (backed off while blocked, at most 32 s apart on the default timing) finds it.
        var sawDirect = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        a.StatusChanged += (_, e) =>
        {
            if (e.Status.FindPeer("switch-b") is { Path: MeshPeerPath.Direct })
            {
                sawDirect.TrySetResult();
            }
        };
        blocked.Value = false;
        await KestrelMesh.UntilAsync(
            () => a.GetStatus().FindPeer("switch-b")!.Path == MeshPeerPath.Direct && b.GetStatus().FindPeer("switch-a")!.Path == MeshPeerPath.Direct,
            () => $"both move to direct under the connection ({KestrelMesh.Names(a)} / {KestrelMesh.Names(b)})",
            TimeSpan.FromSeconds(60));
        await sawDirect.Task.WaitAsync(Limit); // the move raised StatusChanged
        long udpBefore = faults["a"].SendStatistics.Forwarded;
        resume.SetResult();

        TcpTransfer.Outcome sent = await sending.WaitAsync(TimeSpan.FromSeconds(120));
        TcpTransfer.Outcome received = await receiving.WaitAsync(TimeSpan.FromSeconds(120));
        TcpTransfer.AssertSame(sent, received, "the transfer across the move to direct");
        Assert.True(faults["a"].SendStatistics.Forwarded - udpBefore > (8L << 20) / 1500, "the rest went over UDP");
        var status = a.GetStatus().FindPeer("switch-b")!;
        Assert.Equal(MeshPeerPath.Direct, status.Path);
        Assert.Contains(status.PathKind, new[] { MeshPathKind.DirectLan, MeshPathKind.DirectWan });
        Assert.True(status.LastProbe is { } probe && probe.At > DateTimeOffset.UnixEpoch, "a probe is shown");
    }

    [Fact]
    public async Task A_network_change_runs_STUN_reports_endpoints_and_probes_peers_at_once()
    {
        // A STUN server that never answers but counts the binding requests the nodes send.
        using var stun = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        stun.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var stunRequests = new ConcurrentDictionary<int, int>(); // source port -> requests
        using var stop = new CancellationTokenSource();
        Task counting = CountAsync(stun, stunRequests, stop.Token);

        await using KestrelMesh mesh = await KestrelMesh.StartAsync(o => o.StunEndpoints.Add(stun.LocalEndPoint!.ToString()!));
        string key = await mesh.CreateReusableKeyAsync();
        var signal = NetworkChangeSignal.Manual();
        var extra = new Flag(false);
        var options = mesh.NodeOptions("roamer", key);
        options.NetworkChangesForTests = signal;
        options.LocalEndpointsForTests = port => extra.Value
            ? [new IPEndPoint(IPAddress.Loopback, port).ToString(), new IPEndPoint(IPAddress.Parse("127.0.0.9"), port).ToString()]
            : [new IPEndPoint(IPAddress.Loopback, port).ToString()];
        MeshNode roamer = await mesh.StartNodeAsync(options);
        MeshNode steady = await mesh.StartNodeAsync(mesh.NodeOptions("steady", key));
        await KestrelMesh.UntilAsync(() => roamer.GetStatus().FindPeer("steady") is not null && steady.GetStatus().FindPeer("roamer") is not null, "both see each other");
        await using (MeshTcpListener listener = await steady.ListenAsync(7701))
        {
            await KestrelMesh.EchoAsync(roamer, "steady", listener);
        }

        await KestrelMesh.UntilAsync(() => roamer.GetStatus().FindPeer("steady")!.Path == MeshPeerPath.Direct, () => $"roamer goes direct ({KestrelMesh.Names(roamer)})");
        await KestrelMesh.UntilAsync(() => stunRequests.GetValueOrDefault(roamer.ListenPort) > 0, "roamer asked STUN at start");
        int stunBefore = await SettledAsync(() => stunRequests.GetValueOrDefault(roamer.ListenPort)); // its first round's retries are over
        var probeBefore = roamer.GetStatus().FindPeer("steady")!.LastProbe?.At ?? DateTimeOffset.MinValue;

        // The network changes: a new address appears. Without the signal, STUN would wait 2 min and the endpoint report 30 s.
        extra.Value = true;
        var changedAt = DateTimeOffset.UtcNow;
        signal.Raise();
        string added = new IPEndPoint(IPAddress.Parse("127.0.0.9"), roamer.ListenPort).ToString();
        await KestrelMesh.UntilAsync(() => stunRequests.GetValueOrDefault(roamer.ListenPort) > stunBefore, "STUN runs again at once", TimeSpan.FromSeconds(10));
        await KestrelMesh.UntilAsync(
            () => mesh.ListNodesAsync().GetAwaiter().GetResult().Single(n => n.Name == "roamer").Endpoints.Contains(added),
            "the new endpoint reaches the coordinator at once",
            TimeSpan.FromSeconds(10));
        await KestrelMesh.UntilAsync(
            () => steady.GetStatus().FindPeer("roamer")!.Candidates.Any(c => c.Endpoint.ToString() == added),
            "steady learns the new candidate",
            TimeSpan.FromSeconds(10));
        await KestrelMesh.UntilAsync(
            () => roamer.GetStatus().FindPeer("steady")!.LastProbe is { } p && p.At > probeBefore && p.At >= changedAt.AddSeconds(-1),
            "roamer probes its peer at once",
            TimeSpan.FromSeconds(10));
        Assert.True(DateTimeOffset.UtcNow - changedAt < TimeSpan.FromSeconds(30), "all of it before the 30 s endpoint check would have run");

        await stop.CancelAsync();
        stun.Dispose();
        await counting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
    }

    // Waits until a count stops moving for 4 s (a STUN round retries 3 times, 1 s apart), then returns it.
    private static async Task<int> SettledAsync(Func<int> count)
    {
        int last = count();
        var deadline = DateTime.UtcNow + Limit;
        var stableSince = DateTime.UtcNow;
        while (DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
            int now = count();
            if (now != last)
            {
                last = now;
                stableSince = DateTime.UtcNow;
            }
            else if (DateTime.UtcNow - stableSince > TimeSpan.FromSeconds(4))
            {
                return last;
            }
        }

        return last;
    }

    private static async Task CountAsync(Socket socket, ConcurrentDictionary<int, int> counts, CancellationToken cancellationToken)
    {
        var buffer = new byte[1500];
        while (!cancellationToken.IsCancellationRequested)
        {
            SocketReceiveFromResult r = await socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cancellationToken);
            counts.AddOrUpdate(((IPEndPoint)r.RemoteEndPoint).Port, 1, (_, n) => n + 1);
        }
    }

    // Reads and hashes like TcpTransfer.ReceiveAsync, but stops after `pauseAfter` bytes until `resume`.
    private static async Task<TcpTransfer.Outcome> ReceivePausedAsync(Stream stream, long size, int pauseAfter, TaskCompletionSource paused, Task resume, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long total = 0;
        while (total < size)
        {
            long want = total < pauseAfter ? pauseAfter - total : size - total;
            int n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, want)), cancellationToken);
            if (n == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, n);
            total += n;
            if (total == pauseAfter)
            {
                paused.SetResult();
                await resume;
            }
        }

        return new TcpTransfer.Outcome(total, hash.GetHashAndReset(), TimeSpan.Zero);
    }

    // UDP between the test's nodes is dropped while the flag is set (the coordinator and the relay are not).
    private static Func<MeshNodeOptions, PacketBufferPool, DropCounters, IDatagramTransport> Blocking(
        string name, Flag blocked, ConcurrentDictionary<int, bool> nodePorts, ConcurrentDictionary<string, FaultInjectingTransport> created) =>
        (options, pool, drops) =>
        {
            var udp = new UdpTransport(new UdpTransportOptions { BindAddress = IPAddress.Loopback, Pool = pool, Drops = drops });
            int own = udp.LocalPort;
            nodePorts[own] = true;
            var faults = new FaultInjectingTransport(udp, seed: 1, pool) { Block = e => blocked.Value && e.Port != own && nodePorts.ContainsKey(e.Port) };
            created[name] = faults;
            return faults;
        };

    private sealed class Flag(bool value)
    {
        private volatile bool _value = value;

        public bool Value
        {
            get => _value;
            set => _value = value;
        }
    }
}
