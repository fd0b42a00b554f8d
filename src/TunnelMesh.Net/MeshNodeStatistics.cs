using System.Net;

namespace TunnelMesh.Net;

/// <summary>A snapshot of a node's counters.</summary>
/// <param name="Peers">Each peer's counters.</param>
/// <param name="Drops">Dropped datagrams and packets by reason (only reasons with a non-zero count).</param>
public sealed record MeshNodeStatistics(IReadOnlyList<MeshPeerStatistics> Peers, IReadOnlyDictionary<DropReason, long> Drops)
{
    /// <summary>The total of <see cref="Drops"/>.</summary>
    public long TotalDrops => Drops.Values.Sum();

    /// <summary>The count for one reason (0 when none).</summary>
    public long DropsFor(DropReason reason) => Drops.GetValueOrDefault(reason);
}

/// <summary>One peer's counters.</summary>
/// <param name="PublicKey">The peer's key.</param>
/// <param name="Endpoint">Where its packets go now (configured, or learned by roaming), if known.</param>
/// <param name="AllowedIPs">The prefixes routed to it and accepted from it.</param>
/// <param name="ReceivedBytes">Bytes of authenticated transport messages received from it.</param>
/// <param name="SentBytes">Bytes of transport messages sent to it.</param>
/// <param name="Handshakes">Completed handshakes.</param>
/// <param name="LastHandshake">When the last handshake completed, if any did.</param>
public sealed record MeshPeerStatistics(
    NodePublicKey PublicKey,
    IPEndPoint? Endpoint,
    IReadOnlyList<IPNetwork> AllowedIPs,
    long ReceivedBytes,
    long SentBytes,
    long Handshakes,
    DateTimeOffset? LastHandshake);
