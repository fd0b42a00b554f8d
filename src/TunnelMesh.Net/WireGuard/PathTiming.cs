using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.WireGuard;

/// <summary>Which way packets to a peer go now.</summary>
internal enum PeerPath
{
    /// <summary>Straight to the peer's UDP endpoint.</summary>
    Direct,

    /// <summary>Through the coordinator's relay.</summary>
    Relay,
}

/// <summary>Timing of the path choice (see <see cref="PeerPaths"/>).</summary>
/// <param name="ProbeInterval">The tick of the path choice: the first retry interval on the relay, and how often a direct path is checked.</param>
/// <param name="DirectTimeout">How long a direct path may stay silent while we send before the peer falls back to the relay.</param>
internal sealed record PathTiming(TimeSpan ProbeInterval, TimeSpan DirectTimeout)
{
    /// <summary>Defaults: a tick every 2 s, fall back after 6 s of silence (as Tailscale's 6.5 s trust window).</summary>
    public static PathTiming Default { get; } = new(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(6));

    /// <summary>Longest wait between probe rounds while on the relay: the interval doubles from <see cref="ProbeInterval"/> up to this (32 s by default).</summary>
    public TimeSpan MaxRetryInterval { get; init; } = ProbeInterval * 16;

    /// <summary>How often the peer's LAN candidates are pinged while it is direct over the internet (30 s by default).</summary>
    public TimeSpan LanProbeInterval { get; init; } = ProbeInterval * 15;

    /// <summary>A direct path that carries connections but sent nothing for this long gets a ping (20 s by default: under common 30 s NAT timeouts).</summary>
    public TimeSpan KeepaliveInterval { get; init; } = ProbeInterval * 10;

    /// <summary>A direct path counts as carrying connections for this long after its last data (2 min by default), besides open TCP connections.</summary>
    public TimeSpan ActiveWindow { get; init; } = ProbeInterval * 60;

    /// <summary>Most pongs a peer gets per <see cref="ProbeInterval"/> (it pings at most 17 endpoints a round).</summary>
    public int MaxPongsPerInterval { get; init; } = 40;
}

/// <summary>What kind of authenticated message arrived, for the path choice.</summary>
internal enum PathEvidence
{
    /// <summary>A handshake initiation: the peer → us direction works (one way only).</summary>
    Initiation,

    /// <summary>A handshake response: an answer to our initiation, so a round trip.</summary>
    Response,

    /// <summary>A transport message with data, or a keepalive: the peer sends this way, so it chose this path.</summary>
    Transport,

    /// <summary>A path ping: one way only; it is answered with a pong to its source.</summary>
    Ping,
}

/// <summary>What the path choice needs of a WireGuard peer (a fake in unit tests).</summary>
internal interface IPathPeer
{
    /// <summary>Bytes sent to the peer (data, keepalives and path messages).</summary>
    long TxBytes { get; }

    /// <summary>Sets the endpoint packets go to.</summary>
    void SetEndpoint(Endpoint endpoint);

    /// <summary>Seals a path message with the current session and sends it to <paramref name="endpoint"/>; returns the bytes sent (0 without a session).</summary>
    int SendPathMessage(ReadOnlySpan<byte> plaintext, Endpoint endpoint);
}

/// <summary>One candidate of a peer as the path choice sees it.</summary>
/// <param name="Endpoint">The endpoint.</param>
/// <param name="Kind">Its kind (from the peer's call-me-maybe; unknown when only the coordinator published it).</param>
/// <param name="LastPing">When it was last pinged.</param>
/// <param name="LastPong">When a pong last came back from it.</param>
/// <param name="RoundTrip">The round-trip time of that pong.</param>
internal readonly record struct CandidateState(Endpoint Endpoint, CandidateKind Kind, DateTimeOffset? LastPing, DateTimeOffset? LastPong, TimeSpan? RoundTrip);

/// <summary>The outcome of a probe.</summary>
/// <param name="At">When the ping went.</param>
/// <param name="Endpoint">Where it went.</param>
/// <param name="Answered">Whether its pong came back.</param>
/// <param name="RoundTrip">The round-trip time when it did.</param>
internal readonly record struct ProbeOutcome(DateTimeOffset At, Endpoint Endpoint, bool Answered, TimeSpan? RoundTrip);

/// <summary>A snapshot of a peer's path choice.</summary>
/// <param name="Path">Relay or direct.</param>
/// <param name="Lan">Direct to one of the peer's interface addresses (a local candidate).</param>
/// <param name="InUse">The direct endpoint in use (default on the relay).</param>
/// <param name="Probing">The direct endpoint probed first while on the relay.</param>
/// <param name="Candidates">Every candidate known, with what probing found.</param>
/// <param name="LastProbe">The last probe round's result: its first answer, or its last ping when nothing answered.</param>
internal sealed record PathSnapshot(PeerPath Path, bool Lan, Endpoint InUse, Endpoint Probing, IReadOnlyList<CandidateState> Candidates, ProbeOutcome? LastProbe);

/// <summary>Counters of the path choice of one peer.</summary>
internal sealed class PathCounters
{
    internal long PongsUnmatched;
    internal long PongsFromElsewhere;
    internal long CallMeMaybeSent;
    internal long CallMeMaybeReceived;
    internal long Keepalives;
    internal long FellBackOnMove;

    /// <summary>Pongs that answered no ping of ours (forged sessions cannot reach here; replays and stale ones do).</summary>
    public long UnmatchedPongs => Interlocked.Read(ref PongsUnmatched);

    /// <summary>Pongs whose source was not where their ping went (they prove no path).</summary>
    public long MisdirectedPongs => Interlocked.Read(ref PongsFromElsewhere);

    /// <summary>Call-me-maybe messages sent.</summary>
    public long CallsSent => Interlocked.Read(ref CallMeMaybeSent);

    /// <summary>Call-me-maybe messages received.</summary>
    public long CallsReceived => Interlocked.Read(ref CallMeMaybeReceived);

    /// <summary>Keepalive pings sent on an idle direct path.</summary>
    public long KeepalivePings => Interlocked.Read(ref Keepalives);

    /// <summary>Direct paths given up at once because one side moved (an address of ours went away, or the peer stopped announcing the endpoint in use).</summary>
    public long MoveFallbacks => Interlocked.Read(ref FellBackOnMove);
}
