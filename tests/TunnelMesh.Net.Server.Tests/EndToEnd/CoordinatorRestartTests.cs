using System.Security.Cryptography;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.EndToEnd;

/// <summary>The coordinator stops in the middle of a transfer between two nodes and comes back on the same port and SQLite file.</summary>
public sealed class CoordinatorRestartTests
{
    private const long Size = 32L << 20;
    private const int PauseAfter = 4 << 20;

    [Fact]
    public async Task A_transfer_survives_the_coordinator_stopping_and_a_node_joined_after_its_restart_is_reached_by_name()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        string key = await mesh.CreateReusableKeyAsync();
        MeshNode a = await mesh.StartNodeAsync("alpha", key, mesh.StateDirectory("alpha"));
        MeshNode b = await mesh.StartNodeAsync("bravo", key, mesh.StateDirectory("bravo"));

        // Data flows between nodes without the coordinator only on the direct path. A peer leaves the relay once
        // a session exists and a probe succeeds, so talk first, then wait until both use the direct path.
        await using MeshTcpListener listener = await b.ListenAsync(7200);
        await KestrelMesh.PeerAsync(a, "bravo");
        await KestrelMesh.EchoAsync(a, "bravo", listener);
        await KestrelMesh.UntilAsync(
            () => a.GetStatus().FindPeer("bravo")?.Path == MeshPeerPath.Direct && b.GetStatus().FindPeer("alpha")?.Path == MeshPeerPath.Direct,
            () => $"both on the direct path (alpha sees {KestrelMesh.Names(a)}, bravo sees {KestrelMesh.Names(b)})");

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(180));
        Task<MeshTcpStream> accepting = listener.AcceptAsync(cts.Token).AsTask();
        await using MeshTcpStream client = await a.DialAsync("bravo", 7200, cts.Token);
        await using MeshTcpStream server = await accepting;

        // The receiver stops after 4 MiB, so most of the 32 MiB are still to come when the coordinator goes.
        var paused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<TcpTransfer.Outcome> receiving = ReceivePausedAsync(server, paused, resume.Task, cts.Token);
        Task<TcpTransfer.Outcome> sending = TcpTransfer.SendAsync(client, Size, seed: 32, cancellationToken: cts.Token);
        await paused.Task.WaitAsync(KestrelMesh.Deadline);
        Assert.False(sending.IsCompleted, "the sender still has data to send when the coordinator stops");

        await mesh.StopCoordinatorAsync();
        await KestrelMesh.UntilAsync(() => !a.GetStatus().ControlConnected && !b.GetStatus().ControlConnected, "both nodes lost their map streams");
        Assert.False(sending.IsCompleted, "the sender still has data to send while the coordinator is down");
        resume.SetResult();
        TcpTransfer.Outcome sent = await sending.WaitAsync(cts.Token);
        TcpTransfer.Outcome received = await receiving.WaitAsync(cts.Token);
        TcpTransfer.AssertSame(sent, received, "the transfer across the coordinator's stop");
        Assert.False(mesh.CoordinatorRunning);

        // Same port, same SQLite file: the old nodes reconnect by themselves; a new node joins.
        await mesh.StartCoordinatorAsync();
        MeshNode c = await mesh.StartNodeAsync("charlie", key, mesh.StateDirectory("charlie"));
        Assert.Equal(2, c.GetStatus().Peers.Count);
        await KestrelMesh.UntilAsync(() => a.GetStatus().ControlConnected && b.GetStatus().ControlConnected, "both old nodes reconnected their map streams");
        Assert.Equal(a.Address, (await KestrelMesh.PeerAsync(c, "alpha")).Addresses[0]);
        Assert.Equal(c.Address, (await KestrelMesh.PeerAsync(a, "charlie")).Addresses[0]);
        Assert.Equal(c.Address, (await KestrelMesh.PeerAsync(b, "charlie")).Addresses[0]);

        await using MeshTcpListener onC = await c.ListenAsync(7201);
        await KestrelMesh.EchoAsync(a, "charlie", onC);
        await KestrelMesh.EchoAsync(b, "charlie.tunnelmesh", onC);
        await using MeshTcpListener onA = await a.ListenAsync(7202);
        await KestrelMesh.EchoAsync(c, "alpha", onA);

        // The store kept the old nodes: their names and addresses are those from before the restart.
        List<Control.MeshNodeInfo> listed = await mesh.ListNodesAsync();
        Assert.Equal(["alpha", "bravo", "charlie"], listed.Select(n => n.Name).Order());
        Assert.Equal(a.Address.ToString(), listed.Single(n => n.Name == "alpha").Addresses[0]);
    }

    // Hashes what arrives, like TcpTransfer.ReceiveAsync, but holds back after PauseAfter bytes until `resume`.
    private static async Task<TcpTransfer.Outcome> ReceivePausedAsync(Stream stream, TaskCompletionSource paused, Task resume, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long total = 0;
        while (total < Size)
        {
            long want = total < PauseAfter ? PauseAfter - total : Size - total;
            int n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, want)), ct);
            if (n == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, n);
            total += n;
            if (total == PauseAfter)
            {
                paused.SetResult();
                await resume.WaitAsync(ct);
            }
        }

        return new TcpTransfer.Outcome(total, hash.GetHashAndReset(), TimeSpan.Zero);
    }
}
