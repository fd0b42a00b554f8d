using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net;

// The node's view of the underlay: STUN rounds for its reflexive endpoint, and what it does when its
// network changes (an address came or went, its public address moved, a direct path went silent).
public sealed partial class MeshNode
{
    /// <summary>How often a node in control mode asks the coordinator's STUN servers for its reflexive endpoint.</summary>
    internal static readonly TimeSpan StunInterval = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Control mode: asks the STUN servers the coordinator advertises (MeshInfo.StunEndpoints) for the
    /// reflexive endpoint of the WireGuard socket, now and every <see cref="StunInterval"/>, and
    /// publishes it beside the local endpoints. Failures are logged and retried at the next round.
    /// </summary>
    private async Task RunStunAsync(MeshControlPlane control, ILogger logger, CancellationToken cancellationToken)
    {
        await Task.Yield();
        string? published = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            var wake = Volatile.Read(ref _stunWake).Task;
            IReadOnlyList<string> servers = [];
            try
            {
                servers = control.Self.Mesh.StunEndpoints ?? [];
            }
            catch (InvalidOperationException)
            {
                // not joined yet (started from saved state with the coordinator down): next round
            }

            foreach (string server in servers)
            {
                try
                {
                    var endpoint = await ResolveStunServerAsync(server, cancellationToken).ConfigureAwait(false);
                    var reflexive = await Stun.QueryAsync(endpoint, TimeSpan.FromSeconds(1), 3, cancellationToken).ConfigureAwait(false);
                    string text = reflexive.ToString();
                    if (text != published)
                    {
                        // A new public address with the same interfaces: a NAT in front of us was
                        // renumbered (or we were moved behind another). Every connection through it
                        // lost its NAT state, whatever our interfaces say: treat it as an address lost.
                        bool moved = published is not null && IPEndPoint.TryParse(published, out var before) && !before.Address.Equals(reflexive.Address);
                        published = text;
                        control.SetExtraEndpoints([text], CandidateKind.Reflexive);
                        MeshNodeLog.ReflexiveEndpoint(logger, text, server);
                        if (moved)
                        {
                            MeshNodeLog.PublicAddressMoved(logger, text);
                            _relay?.Reconnect();
                            control.OnNetworkChanged(addressLost: true);
                        }

                        _device?.OnNetworkChanged(addressLost: moved); // our candidates changed: peers get a call-me-maybe
                    }

                    break;
                }
                catch (Exception ex) when (ex is TimeoutException or SocketException or FormatException or ArgumentException or MeshConfigurationException)
                {
                    MeshNodeLog.StunFailed(logger, server, ex.Message);
                }
            }

            try
            {
                // Every StunInterval, or at once after a network change (OnNetworkChanged), also one during the round.
                using var round = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                await Task.WhenAny(Task.Delay(StunInterval, _time, round.Token), wake).ConfigureAwait(false);
                await round.CancelAsync().ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// The network changed (an address came or went): STUN runs again at once, the endpoints are
    /// reported again, and every peer's path choice probes at once (calling its peer while relayed);
    /// a direct path whose source address moved is followed by the peer (WireGuard roaming).
    /// </summary>
    private void OnNetworkChanged(bool addressLost)
    {
        if (Volatile.Read(ref _state) != 1)
        {
            return;
        }

        MeshNodeLog.NetworkChanged(_loggerFactory.CreateLogger<MeshNode>());
        Interlocked.Exchange(ref _stunWake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        _control?.OnNetworkChanged(addressLost);
        _device?.OnNetworkChanged(addressLost);
    }

    /// <summary>
    /// A peer's path moved. A direct path given up for silence may mean our NAT mapping changed (the
    /// router was renumbered or its state flushed) while our interfaces did not: STUN runs again at
    /// once (at most every <see cref="StunWakeInterval"/>), so a new public address is published and
    /// called to peers instead of waiting for the next round.
    /// </summary>
    private void OnPathChanged(WireGuardPeer peer, PeerPath path)
    {
        RaiseStatusChanged();
        if (path != PeerPath.Relay || _control is null)
        {
            return;
        }

        long now = _time.GetTimestamp();
        long last = Interlocked.Read(ref _lastStunWake);
        if (last != 0 && _time.GetElapsedTime(last, now) < StunWakeInterval)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref _lastStunWake, now, last) == last)
        {
            Interlocked.Exchange(ref _stunWake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }

    /// <summary>The least time between two STUN rounds started by paths falling back.</summary>
    internal static readonly TimeSpan StunWakeInterval = TimeSpan.FromSeconds(10);

    private static async Task<IPEndPoint> ResolveStunServerAsync(string hostPort, CancellationToken cancellationToken)
    {
        var parsed = WgQuickConfig.ParseEndpoint(hostPort) ?? throw new FormatException($"'{hostPort}' is not host:port");
        var endpoint = await MeshNodeConfigValidator.ResolveAsync(parsed, "MeshInfo.StunEndpoints", cancellationToken).ConfigureAwait(false);
        return endpoint.ToIPEndPoint();
    }
}
