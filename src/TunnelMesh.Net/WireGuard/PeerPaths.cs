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
/// <param name="ProbeInterval">How often a peer on the relay is pinged directly, and how often a direct path is checked.</param>
/// <param name="DirectTimeout">How long a direct path may stay silent while we send before the peer falls back to the relay.</param>
internal sealed record PathTiming(TimeSpan ProbeInterval, TimeSpan DirectTimeout)
{
    /// <summary>Defaults: a ping every 2 s, fall back after 6 s of silence (as Tailscale's 6.5 s trust window).</summary>
    public static PathTiming Default { get; } = new(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(6));
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

    /// <summary>A path pong: an answer to our ping, so a round trip.</summary>
    Pong,
}

/// <summary>
/// The path choice of one peer when the node has a relay. Every peer starts on the relay, so it is
/// reachable from its first packet. While on the relay, the peer's known direct endpoint and every
/// candidate the coordinator published for it (its interface and STUN reflexive addresses) are pinged
/// every <see cref="PathTiming.ProbeInterval"/> (and handshake initiations go both ways); the peer
/// moves to direct when a round trip over UDP succeeds (a pong or handshake response arrives directly)
/// or when the peer itself sends us traffic directly (it has proven the path from its side). A direct
/// path that hears nothing while we send for <see cref="PathTiming.DirectTimeout"/> falls back to the relay.
/// </summary>
/// <remarks>
/// <para>
/// Pings and pongs are WireGuard transport messages (encrypted and authenticated with the session)
/// whose 16-byte plaintext starts with a zero byte, which no IP packet does (see <see cref="PathControl"/>);
/// a plain WireGuard peer drops them after authentication, as a packet with a bad IP version.
/// </para>
/// <para>
/// The hot path is untouched: the check runs on a timer and compares the peer's transmit counter
/// between ticks instead of stamping each send.
/// </para>
/// </remarks>
internal sealed class PeerPaths : IDisposable
{
    private readonly WireGuardPeer _peer;
    private readonly TimeProvider _time;
    private readonly PathTiming _timing;
    private readonly Action<WireGuardPeer, PeerPath> _changed;
    private readonly Lock _gate = new();
    private readonly ITimer _timer;
    private Endpoint _direct;
    private IReadOnlyList<Endpoint> _candidates;
    private PeerPath _path = PeerPath.Relay;
    private long _lastDirectHeard = long.MinValue;
    private long _lastTick;
    private long _lastTickTx;
    private long _silentSince = long.MinValue;
    private bool _disposed;

    public PeerPaths(WireGuardPeer peer, Endpoint relay, Endpoint direct, IReadOnlyList<Endpoint> candidates, TimeProvider time, PathTiming timing, Action<WireGuardPeer, PeerPath> changed)
    {
        _peer = peer;
        Relay = relay;
        _direct = direct;
        _candidates = candidates;
        _time = time;
        _timing = timing;
        _changed = changed;
        _lastTick = time.GetTimestamp();
        _timer = time.CreateTimer(static s => ((PeerPaths)s!).Tick(), this, timing.ProbeInterval, timing.ProbeInterval);
    }

    /// <summary>The relay path to the peer.</summary>
    public Endpoint Relay { get; }

    /// <summary>The path in use.</summary>
    public PeerPath Path
    {
        get
        {
            lock (_gate)
            {
                return _path;
            }
        }
    }

    /// <summary>The peer's direct endpoint as known (configured, or the source of its last direct message); default when none.</summary>
    public Endpoint Direct
    {
        get
        {
            lock (_gate)
            {
                return _direct;
            }
        }
    }

    /// <summary>
    /// A new direct endpoint from configuration (the coordinator's map): probed from now on. While a
    /// direct path is in use, the peer goes back to the relay first: it published another endpoint
    /// (it restarted on another port, or moved), so the one in use may be dead, and the relay always
    /// reaches it; a round trip to the new endpoint moves it to direct again.
    /// </summary>
    /// <param name="endpoint">The first usable published endpoint.</param>
    /// <param name="candidates">Every usable published endpoint, probed too while on the relay.</param>
    public void OfferDirect(Endpoint endpoint, IReadOnlyList<Endpoint> candidates)
    {
        bool fellBack = false;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _candidates = candidates;
            if (endpoint == _direct || (_path == PeerPath.Direct && candidates.Contains(_direct)))
            {
                return; // the path in use is still one the peer publishes
            }

            _direct = endpoint;
            if (_path == PeerPath.Direct)
            {
                _path = PeerPath.Relay;
                _silentSince = long.MinValue;
                fellBack = true;
            }
        }

        if (fellBack)
        {
            _peer.SetEndpoint(Relay);
            _changed(_peer, PeerPath.Relay);
        }
    }

    /// <summary>Where a copy of a handshake initiation should also go: the direct endpoint while on the relay.</summary>
    public Endpoint ProbeEndpoint
    {
        get
        {
            lock (_gate)
            {
                return _path == PeerPath.Relay ? _direct : default;
            }
        }
    }

    /// <summary>An authenticated message of <paramref name="evidence"/> arrived from <paramref name="source"/>.</summary>
    public void OnAuthenticated(Endpoint source, PathEvidence evidence)
    {
        if (source.IsRelay || !source.IsSet)
        {
            return; // the relay always works when it delivers; the choice rests on direct evidence
        }

        bool switched = false;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _direct = source; // roaming: the newest authenticated direct source
            if (evidence is PathEvidence.Ping or PathEvidence.Initiation)
            {
                // One way only; not liveness of our sends either (they may still be lost).
                return;
            }

            _lastDirectHeard = _time.GetTimestamp();
            _silentSince = long.MinValue;
            if (_path == PeerPath.Relay)
            {
                _path = PeerPath.Direct;
                switched = true;
            }
        }

        // The endpoint follows the direct source while direct (plain WireGuard roaming).
        _peer.SetEndpoint(source);
        if (switched)
        {
            _changed(_peer, PeerPath.Direct);
        }
    }

    private void Tick()
    {
        long now = _time.GetTimestamp();
        long tx = _peer.TxBytes;
        Endpoint ping = default;
        IReadOnlyList<Endpoint> others = [];
        bool fellBack = false;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (_path == PeerPath.Relay)
            {
                ping = _direct;
                others = _candidates;
            }
            else
            {
                bool heard = _lastDirectHeard != long.MinValue && _lastDirectHeard >= _lastTick;
                bool sent = tx != _lastTickTx;
                if (heard)
                {
                    _silentSince = long.MinValue;
                }
                else if (sent)
                {
                    if (_silentSince == long.MinValue)
                    {
                        _silentSince = _lastTick;
                    }

                    ping = _direct; // ask for an answer: the peer may simply have nothing to send
                }

                if (_silentSince != long.MinValue && _time.GetElapsedTime(_silentSince, now) >= _timing.DirectTimeout)
                {
                    _path = PeerPath.Relay;
                    _silentSince = long.MinValue;
                    fellBack = true;
                    ping = default;
                }
            }

            _lastTick = now;
            _lastTickTx = tx;
        }

        if (fellBack)
        {
            _peer.SetEndpoint(Relay);
            _changed(_peer, PeerPath.Relay);
        }

        if (ping.IsSet)
        {
            _peer.SendPathControl(PathControl.Ping, ping);
        }

        // Every other published candidate too (at most PeerEndpointChooser.MaxPublished): the first to
        // answer with a pong becomes the direct path (OnAuthenticated), so the peer's LAN address wins
        // on a LAN and its reflexive address across NATs, whatever order it published them in.
        foreach (var candidate in others)
        {
            if (candidate != ping && candidate.IsSet)
            {
                _peer.SendPathControl(PathControl.Ping, candidate);
            }
        }
    }

    /// <summary>Stops the timer.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        _timer.Dispose();
    }
}

/// <summary>
/// The path ping and pong: a WireGuard transport message with a 16-byte plaintext <c>00 kind 00…</c>.
/// The zero first byte tells it from an IP packet (version 4 or 6 in the top nibble).
/// </summary>
internal static class PathControl
{
    /// <summary>Plaintext length of a ping or pong.</summary>
    public const int Length = 16;

    /// <summary>A ping: answer with a pong to its source.</summary>
    public const byte Ping = 1;

    /// <summary>A pong: the answer to a ping.</summary>
    public const byte Pong = 2;

    /// <summary>The kind of a decrypted plaintext, or 0 when it is not a path message.</summary>
    public static byte KindOf(ReadOnlySpan<byte> plaintext) =>
        plaintext.Length == Length && plaintext[0] == 0 && plaintext[1] is Ping or Pong ? plaintext[1] : (byte)0;

    /// <summary>Writes a ping or pong plaintext.</summary>
    public static void Write(Span<byte> destination, byte kind)
    {
        destination[..Length].Clear();
        destination[1] = kind;
    }
}
