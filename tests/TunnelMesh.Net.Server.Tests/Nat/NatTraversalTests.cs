using System.Diagnostics;
using System.Net;
using TunnelMesh.Net.Tests.Support;
using Xunit.Abstractions;

namespace TunnelMesh.Net.Server.Tests.Nat;

/// <summary>
/// Nodes behind real Linux NATs (<see cref="NatLab"/>): nftables masquerade routers with a stateful
/// forward filter, the coordinator and its STUN responder on 203.0.113.0/24, every node a
/// <c>tunnelmesh join</c> process on default options. Data crosses real sockets at both ends
/// (SOCKS5 into the sender's node, <c>--forward</c> out of the receiver's) and is compared by SHA-256.
/// The tests of this class run one after another (one xunit collection per class).
/// </summary>
public sealed class NatTraversalTests(ITestOutputHelper output)
{
    private const long Transfer64 = 64L << 20;
    private const long Transfer256 = 256L << 20;
    private static readonly TimeSpan TransferDeadline = TimeSpan.FromSeconds(120);

    [ExternalFact("ip", "nft")]
    public async Task Two_nodes_behind_two_easy_NATs_go_direct_within_10_s_and_carry_64_MiB_intact()
    {
        await using var lab = await NatLab.StartAsync();
        var (a, b, transfer) = await TwoSitesAsync(lab, NatKind.Easy, NatKind.Easy);
        using var _ = transfer;
        await WithLogsAsync(lab, async () =>
        {
            var bothOnline = Math.Max(a.OnlineTimestamp, b.OnlineTimestamp);

            // Peers that never talk have no WireGuard session and no reason for a path (Tailscale too sets one up
            // on the first packet): one ping, as a user's first connection would, starts it; it goes by the relay.
            output.WriteLine(await a.PingAsync(b));
            var (ab, ba) = await BothAsync(a, b, p => p.IsDirect, "a direct path both ways", TimeSpan.FromSeconds(30));
            var toDirect = Stopwatch.GetElapsedTime(bothOnline);
            output.WriteLine($"direct {toDirect.TotalSeconds:0.00} s after both were online: {ab}; {ba}");
            Assert.True(toDirect <= TimeSpan.FromSeconds(10), $"direct only after {toDirect.TotalSeconds:0.0} s");

            // Each sees the other at its router's public address (no LAN in common).
            Assert.Equal(b.Host.Router.WanAddress, ab.EndpointAddress);
            Assert.Equal(a.Host.Router.WanAddress, ba.EndpointAddress);

            var result = await RunTransferAsync(transfer, a, b, Transfer64);
            result.AssertIntact();
            Assert.True((await a.PeerAsync(b))!.IsDirect, "the path left direct during the transfer");
        });
    }

    [ExternalFact("ip", "nft")]
    public async Task Two_nodes_behind_two_hard_NATs_stay_on_the_relay_and_carry_64_MiB_intact()
    {
        await using var lab = await NatLab.StartAsync();
        var (a, b, transfer) = await TwoSitesAsync(lab, NatKind.Hard, NatKind.Hard);
        using var _ = transfer;
        await WithLogsAsync(lab, async () =>
        {
            await BothAsync(a, b, p => p.Online, "each sees the other online", TimeSpan.FromSeconds(30));
            output.WriteLine(await a.PingAsync(b));

            // Probing gets at least the 10 s a pair of easy NATs may take, the transfer running meanwhile (the path is
            // sampled from both sides all along); endpoint-dependent mappings on both sides never open.
            var watch = Stopwatch.StartNew();
            var running = RunTransferAsync(transfer, a, b, Transfer64);
            while (!running.IsCompleted || watch.Elapsed < TimeSpan.FromSeconds(10))
            {
                var ab = await a.PeerAsync(b);
                var ba = await b.PeerAsync(a);
                Assert.False(ab!.IsDirect || ba!.IsDirect, $"a direct path through two hard NATs: alpha sees {ab}; beta sees {ba}");
                await Task.WhenAny(running, Task.Delay(250));
            }

            var result = await running;
            result.AssertIntact();
            var after = await a.PeerAsync(b);
            Assert.True(after!.IsRelay, $"after the transfer: {after}");
        });
    }

    [ExternalFact("ip", "nft")]
    public async Task Two_nodes_behind_the_same_NAT_go_direct_on_their_LAN_addresses()
    {
        await using var lab = await NatLab.StartAsync();
        var router = await lab.AddRouterAsync(NatKind.Easy);
        var hostA = await lab.AddHostAsync(router);
        var hostB = await lab.AddHostAsync(router);
        var a = await lab.StartNodeAsync("alpha", hostA);
        var b = await lab.StartNodeAsync("beta", hostB);
        await WithLogsAsync(lab, async () =>
        {
            // The router does not hairpin (no DNAT at all), so only the LAN addresses can work.
            output.WriteLine(await a.PingAsync(b));
            var (ab, ba) = await BothAsync(a, b, p => p.IsDirect, "a direct path both ways", TimeSpan.FromSeconds(30));
            output.WriteLine($"{ab}; {ba}");
            Assert.Equal(hostB.Address, ab.EndpointAddress);
            Assert.Equal(hostA.Address, ba.EndpointAddress);
        });
    }

    [ExternalFact("ip", "nft", "conntrack")]
    public async Task Flushing_the_NATs_conntrack_tables_mid_transfer_loses_no_byte_and_the_path_recovers()
    {
        await using var lab = await NatLab.StartAsync();
        var (a, b, transfer) = await TwoSitesAsync(lab, NatKind.Easy, NatKind.Easy);
        using var _ = transfer;
        await WithLogsAsync(lab, async () =>
        {
            var running = await TransferOnDirectPathAsync(transfer, a, b, Transfer64);

            // Every mapping and filter state on both routers goes at once: what was established is now unsolicited.
            int before = await a.Host.Router.ConntrackCountAsync();
            await a.Host.Router.FlushConntrackAsync();
            await b.Host.Router.FlushConntrackAsync();
            output.WriteLine($"flushed {before} conntrack entries on {a.Host.Router.Name} at {transfer.Received >> 20} MiB");
            Assert.True(before > 0, "router A tracked nothing before the flush");

            var result = await running;
            result.AssertIntact();
            await BothAsync(a, b, p => p.IsDirect, "a direct path both ways again after the flush", TimeSpan.FromSeconds(30));
        });
    }

    [ExternalFact("ip", "nft")]
    public async Task A_node_whose_LAN_address_changes_mid_transfer_delivers_256_MiB_intact()
    {
        await using var lab = await NatLab.StartAsync();
        var (a, b, transfer) = await TwoSitesAsync(lab, NatKind.Easy, NatKind.Easy);
        using var _ = transfer;
        await WithLogsAsync(lab, async () =>
        {
            var running = await TransferOnDirectPathAsync(transfer, a, b, Transfer256);

            var old = a.Host.Address;
            await a.Host.RenumberAsync();
            output.WriteLine($"host A moved from {old} to {a.Host.Address} at {transfer.Received >> 20} MiB");

            var result = await running;
            result.AssertIntact();
        });
    }

    [ExternalFact("ip", "nft", "conntrack")]
    public async Task When_the_ISP_renumbers_a_router_mid_transfer_no_byte_is_lost_and_the_pair_goes_direct_again()
    {
        // The host keeps its address: nothing on it changes, so the node cannot learn of the move from
        // its interfaces. Its NAT mapping is gone; the path falls back, STUN shows the new public
        // address, the peer is told, and both go direct on the new mapping.
        await using var lab = await NatLab.StartAsync();
        var (a, b, transfer) = await TwoSitesAsync(lab, NatKind.Easy, NatKind.Easy);
        using var _ = transfer;
        await WithLogsAsync(lab, async () =>
        {
            var running = await TransferOnDirectPathAsync(transfer, a, b, Transfer64);

            var router = a.Host.Router;
            var moved = IPAddress.Parse("203.0.113.41");
            await router.RenumberWanAsync(moved);
            output.WriteLine($"router A renumbered to {moved} at {transfer.Received >> 20} MiB");

            var result = await running;
            result.AssertIntact();
            var (_, ba) = await BothAsync(a, b, p => p.IsDirect && (p.Name != "alpha" || p.EndpointAddress?.Equals(moved) == true),
                "direct again, beta to alpha's new public address", TimeSpan.FromSeconds(30));
            output.WriteLine($"after: {ba}");
        });
    }

    /// <summary>One ping (it starts the session), a direct path both ways, then a transfer of <paramref name="bytes"/> running with a quarter received.</summary>
    private async Task<Task<LabTransfer.Result>> TransferOnDirectPathAsync(LabTransfer transfer, LabNode a, LabNode b, long bytes)
    {
        output.WriteLine(await a.PingAsync(b));
        await BothAsync(a, b, p => p.IsDirect, "a direct path both ways", TimeSpan.FromSeconds(30));
        var running = RunTransferAsync(transfer, a, b, bytes);
        await UntilReceivedAsync(transfer, bytes / 4, running);
        return running;
    }

    /// <summary>Two routers of the given kinds, a host behind each; beta (receiver, <c>--forward</c>) and alpha (sender, <c>--socks5</c>).</summary>
    internal static async Task<(LabNode A, LabNode B, LabTransfer Transfer)> TwoSitesAsync(NatLab lab, NatKind kindA, NatKind kindB)
    {
        var routerA = await lab.AddRouterAsync(kindA);
        var routerB = await lab.AddRouterAsync(kindB);
        var hostA = await lab.AddHostAsync(routerA);
        var hostB = await lab.AddHostAsync(routerB);
        var transfer = LabTransfer.Listen(hostB);
        try
        {
            var b = await lab.StartNodeAsync("beta", hostB, "--forward", transfer.ForwardOption);
            var a = await lab.StartNodeAsync("alpha", hostA, "--socks5", "127.0.0.1:0");
            return (a, b, transfer);
        }
        catch
        {
            transfer.Dispose();
            throw;
        }
    }

    /// <summary>Waits until a sees b and b sees a satisfying <paramref name="condition"/>.</summary>
    internal static async Task<(LabPeer AB, LabPeer BA)> BothAsync(LabNode a, LabNode b, Func<LabPeer, bool> condition, string what, TimeSpan deadline)
    {
        LabPeer? ab = null, ba = null;
        await NatLab.UntilAsync(async () =>
        {
            ab = await a.PeerAsync(b);
            ba = await b.PeerAsync(a);
            return ab is not null && ba is not null && condition(ab) && condition(ba) ? "" : null;
        }, what, deadline, () => $"alpha sees {ab?.ToString() ?? "nothing"}; beta sees {ba?.ToString() ?? "nothing"}");
        return (ab!, ba!);
    }

    private async Task<LabTransfer.Result> RunTransferAsync(LabTransfer transfer, LabNode a, LabNode b, long bytes)
    {
        using var deadline = new CancellationTokenSource(TransferDeadline);
        try
        {
            var result = await transfer.RunAsync(a, b, bytes, deadline.Token);
            output.WriteLine($"{bytes >> 20} MiB in {result.Elapsed.TotalSeconds:0.00} s ({result.MiBps:0} MiB/s); alpha sees {await a.PeerAsync(b)}");
            return result;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            throw new TimeoutException($"the transfer stalled: {transfer.Received >> 20} of {bytes >> 20} MiB after {TransferDeadline.TotalSeconds} s; alpha sees {await a.PeerAsync(b)}");
        }
    }

    private static async Task UntilReceivedAsync(LabTransfer transfer, long bytes, Task running)
    {
        var watch = Stopwatch.StartNew();
        while (transfer.Received < bytes)
        {
            if (running.IsCompleted)
            {
                await running;
                Assert.Fail($"the transfer ended at {transfer.Received} bytes before reaching {bytes}");
            }

            Assert.True(watch.Elapsed < TransferDeadline, $"only {transfer.Received >> 20} MiB arrived in {TransferDeadline.TotalSeconds} s");
            await Task.Delay(5);
        }
    }

    /// <summary>Runs <paramref name="body"/>; a failure carries the tail of every lab process's output.</summary>
    private async Task WithLogsAsync(NatLab lab, Func<Task> body)
    {
        try
        {
            await body();
            if (NatLab.Verbose)
            {
                output.WriteLine(lab.Logs());
            }
        }
        catch (Exception ex)
        {
            output.WriteLine(lab.Logs());
            throw new Xunit.Sdk.XunitException($"{ex.GetType().Name}: {ex.Message}\n{lab.Logs()}");
        }
    }
}
