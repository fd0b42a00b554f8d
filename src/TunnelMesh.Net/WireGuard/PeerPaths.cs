using System.Security.Cryptography;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// The path choice of one peer when the node has a relay. Every peer starts on the relay, so it is
/// reachable from its first packet. While on the relay, the peer's known direct endpoint and every
/// candidate known for it (published by the coordinator, or announced by the peer in a
/// call-me-maybe) are pinged in rounds: at once, then after <see cref="PathTiming.ProbeInterval"/>,
/// doubling up to <see cref="PathTiming.MaxRetryInterval"/>; the rounds start over at once when a
/// session comes up, the candidates change, the peer calls (call-me-maybe) or the network changes.
/// The peer moves to direct when a round trip over UDP succeeds (a pong that answers one of our pings
/// from where it went, or a handshake response arriving directly) or when the peer itself sends us
/// traffic directly. A direct path that hears nothing while we send for
/// <see cref="PathTiming.DirectTimeout"/> falls back to the relay.
/// </summary>
/// <remarks>
/// <para>
/// Preference: the same LAN (a candidate the peer announced as one of its interface addresses), then
/// direct over the internet, then the relay. While direct over the internet, the peer's LAN
/// candidates are pinged every <see cref="PathTiming.LanProbeInterval"/> and the first to answer
/// takes over; a path never moves from a LAN endpoint to a known internet one. Switching only changes
/// where WireGuard sends: sessions, the TCP stack and its connections do not see it.
/// </para>
/// <para>
/// Call-me-maybe: when a session comes up, or the peer's candidates change while relayed, or ours
/// change, this node sends the peer its own candidates with their kinds inside the session (through
/// the relay while relayed) and probes at once; the peer probes back on receipt, so both NATs open
/// their mappings together.
/// </para>
/// <para>
/// Keepalive: a direct path that sent nothing for <see cref="PathTiming.KeepaliveInterval"/> gets a
/// ping while it carries connections: the node's TCP stack has an open connection to the peer, or
/// data went to it within <see cref="PathTiming.ActiveWindow"/>. The pong refreshes the NAT mappings
/// of both directions.
/// </para>
/// <para>
/// Path messages are authenticated and replay-protected by the session (see <see cref="PathControl"/>);
/// a pong counts only when its transaction id matches a ping of ours still pending, once; pongs are
/// answered within a per-peer budget (<see cref="PathTiming.MaxPongsPerInterval"/>). The hot path is
/// untouched: checks run on a timer and compare the peer's transmit counter between ticks.
/// </para>
/// </remarks>
internal sealed class PeerPaths : IDisposable
{
    private readonly IPathPeer _peer;
    private readonly TimeProvider _time;
    private readonly PathTiming _timing;
    private readonly Action<PeerPath> _changed;
    private readonly Func<IReadOnlyList<PathCandidate>> _localCandidates;
    private readonly Func<bool>? _carriesConnections;
    private readonly Lock _gate = new();
    private readonly ITimer _timer;
    private readonly ProbeBudget _pongs;
    private readonly ProbeLog _probes;
    private Endpoint _direct;
    private Endpoint _inUse;
    private IReadOnlyList<Endpoint> _published;
    private List<PathCandidate> _announced = [];
    private PeerPath _path = PeerPath.Relay;
    private long _lastDirectHeard = long.MinValue;
    private long _lastTick;
    private long _lastTickTx;
    private long _lastTxChange;
    private long _lastTickDataTx;
    private long _lastDataTx = long.MinValue;
    private long _controlTx;
    private long _silentSince = long.MinValue;
    private TimeSpan _retry;
    private long _nextRound;
    private long _nextLanProbe;
    private long _lastCallSent = long.MinValue;
    private long _lastCallHandled = long.MinValue;
    private long _lastNetworkChange = long.MinValue;
    private int _round;
    private bool _disposed;

    public PeerPaths(
        IPathPeer peer,
        Endpoint relay,
        Endpoint direct,
        IReadOnlyList<Endpoint> candidates,
        TimeProvider time,
        PathTiming timing,
        Action<PeerPath> changed,
        Func<IReadOnlyList<PathCandidate>>? localCandidates = null,
        Func<bool>? carriesConnections = null)
    {
        _peer = peer;
        Relay = relay;
        _direct = direct;
        _published = candidates;
        _time = time;
        _timing = timing;
        _changed = changed;
        _localCandidates = localCandidates ?? (static () => []);
        _carriesConnections = carriesConnections;
        _probes = new ProbeLog(time);
        _pongs = new ProbeBudget(time, timing.MaxPongsPerInterval, timing.ProbeInterval);
        long now = time.GetTimestamp();
        _lastTick = now;
        _lastTxChange = now;
        _retry = timing.ProbeInterval;
        _nextRound = now + ToTicks(timing.ProbeInterval); // the first round goes with the first tick (no session before it anyway)
        _timer = time.CreateTimer(static s => ((PeerPaths)s!).Tick(), this, timing.ProbeInterval, timing.ProbeInterval);
    }

    /// <summary>The relay path to the peer.</summary>
    public Endpoint Relay { get; }

    /// <summary>Counters (for tests and diagnostics).</summary>
    public PathCounters Counters { get; } = new();

    /// <summary>Pongs refused by the per-peer budget.</summary>
    public long PongsRefused => _pongs.Refused;

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

    /// <summary>The direct endpoint: the one in use while direct, else the one probed first (configured, or the source of the peer's last one-way message); default when none.</summary>
    public Endpoint Direct
    {
        get
        {
            lock (_gate)
            {
                return _path == PeerPath.Direct ? _inUse : _direct;
            }
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

    /// <summary>The path choice now, with every candidate and the last probe.</summary>
    public PathSnapshot Snapshot()
    {
        lock (_gate)
        {
            var list = new List<CandidateState>();
            foreach (var c in CandidatesLocked())
            {
                var r = _probes.ResultOf(c.Endpoint);
                list.Add(new CandidateState(c.Endpoint, c.Kind, r.LastPing, r.LastPong, r.RoundTrip));
            }

            return new PathSnapshot(_path, _path == PeerPath.Direct && KindLocked(_inUse) == CandidateKind.Local, _path == PeerPath.Direct ? _inUse : default, _direct, list, _probes.Last);
        }
    }

    /// <summary>
    /// A new direct endpoint or candidate list from configuration (the coordinator's map). While on the
    /// relay, new candidates start the probe rounds over at once, with a call-me-maybe to the peer. While
    /// a direct path is in use that the peer no longer publishes, the peer goes back to the relay first:
    /// it published other endpoints (it restarted on another port, or moved), so the one in use may be
    /// dead, and the relay always reaches it.
    /// </summary>
    /// <param name="endpoint">The first usable published endpoint.</param>
    /// <param name="candidates">Every usable published endpoint.</param>
    public void OfferDirect(Endpoint endpoint, IReadOnlyList<Endpoint> candidates)
    {
        bool fellBack = false;
        bool probe = false;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            bool changed = !_published.SequenceEqual(candidates);
            _published = candidates;
            if (changed && _announced.Count > 0)
            {
                // The peer published anew (it restarted, or moved): what it announced before may be gone.
                // It announces again with its next session.
                _announced = _announced.FindAll(c => candidates.Contains(c.Endpoint));
            }

            if (_path == PeerPath.Direct)
            {
                if (endpoint == _direct || candidates.Contains(_inUse))
                {
                    return; // the path in use is still one the peer publishes
                }

                _direct = endpoint;
                FallBackLocked(_time.GetTimestamp());
                fellBack = true;
            }
            else
            {
                if (endpoint.IsSet)
                {
                    _direct = endpoint;
                }

                probe = changed;
            }

            if (probe || fellBack)
            {
                ResetRetryLocked(_time.GetTimestamp());
            }
        }

        if (fellBack)
        {
            _peer.SetEndpoint(Relay);
            _changed(PeerPath.Relay);
        }

        if (probe || fellBack)
        {
            CallAndProbe();
        }
    }

    /// <summary>An authenticated message of <paramref name="evidence"/> arrived from <paramref name="source"/>.</summary>
    public void OnAuthenticated(Endpoint source, PathEvidence evidence)
    {
        if (source.IsRelay || !source.IsSet)
        {
            return; // the relay always works when it delivers; the choice rests on direct evidence
        }

        bool switched;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (evidence == PathEvidence.Initiation || (_path == PeerPath.Relay && evidence == PathEvidence.Ping))
            {
                // One way only; not liveness of our sends either (they may still be lost). Probe it.
                if (_path == PeerPath.Relay)
                {
                    _direct = source;
                }

                return;
            }

            if (_path == PeerPath.Direct && source == _inUse)
            {
                if (evidence != PathEvidence.Ping)
                {
                    HeardLocked(); // a ping proves only the peer → us direction: not liveness of our sends
                }

                return;
            }

            // Round trip (response), or the peer sends this way (transport), or a ping from a new
            // source while direct: roaming, unless the source is a known candidate worse than the path in use.
            if (_path == PeerPath.Direct && IsKnownLocked(source) && PathCandidate.Rank(KindLocked(source)) < PathCandidate.Rank(KindLocked(_inUse)))
            {
                return;
            }

            switched = SwitchLocked(source);
        }

        _peer.SetEndpoint(source);
        if (switched)
        {
            _changed(PeerPath.Direct);
        }
    }

    /// <summary>A pong arrived from <paramref name="source"/> with <paramref name="txid"/>.</summary>
    public void OnPong(Endpoint source, ulong txid)
    {
        if (source.IsRelay || !source.IsSet)
        {
            return; // a pong through the relay proves nothing about a direct path
        }

        bool moved = false;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            switch (_probes.Answered(txid, source))
            {
                case PongMatch.Unmatched:
                    Interlocked.Increment(ref Counters.PongsUnmatched);
                    return;
                case PongMatch.FromElsewhere:
                    Interlocked.Increment(ref Counters.PongsFromElsewhere);
                    return;
            }

            if (_path == PeerPath.Direct && source == _inUse)
            {
                HeardLocked();
            }
            else if (_path == PeerPath.Relay || PathCandidate.Rank(KindLocked(source)) > PathCandidate.Rank(KindLocked(_inUse)))
            {
                SwitchLocked(source);
                moved = true;
            }
        }

        if (moved)
        {
            _peer.SetEndpoint(source);
            _changed(PeerPath.Direct);
        }
    }

    /// <summary>Answers a ping from <paramref name="source"/> with a pong, within the per-peer budget; false when refused.</summary>
    public bool AnswerPing(Endpoint source, ulong txid)
    {
        if (!_pongs.TryTake())
        {
            return false;
        }

        Span<byte> message = stackalloc byte[PathControl.Length];
        PathControl.WriteProbe(message, PathControl.Pong, txid);
        int sent = _peer.SendPathMessage(message, source);
        Interlocked.Add(ref _controlTx, sent);
        return true;
    }

    /// <summary>
    /// The peer called (call-me-maybe, authenticated by the session): its candidates, with their kinds.
    /// They replace what it announced before; on the relay, or direct over the internet with a LAN
    /// candidate now known, the candidates are probed at once (at most once per <see cref="PathTiming.ProbeInterval"/>/2).
    /// </summary>
    public void OnCallMeMaybe(IReadOnlyList<PathCandidate> candidates)
    {
        bool probe;
        bool fellBack = false;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            Interlocked.Increment(ref Counters.CallMeMaybeReceived);
            var before = _announced;
            _announced = candidates.Count <= PathControl.MaxCandidates ? [.. candidates] : candidates.Take(PathControl.MaxCandidates).ToList();
            long now = _time.GetTimestamp();
            if (_path == PeerPath.Direct && before.Exists(c => c.Endpoint == _inUse) && !_announced.Exists(c => c.Endpoint == _inUse))
            {
                // The peer announced the endpoint in use before and no longer does: it moved (a new
                // address, a new NAT mapping), so the path is likely dead. The relay reaches it; its
                // new candidates are probed below. An endpoint it never announced (a roaming source,
                // a hard NAT's port) is not judged by the list.
                FallBackLocked(now);
                fellBack = true;
                _lastCallHandled = long.MinValue;
            }

            probe = _lastCallHandled == long.MinValue || _time.GetElapsedTime(_lastCallHandled, now) >= _timing.ProbeInterval / 2;
            if (probe)
            {
                _lastCallHandled = now;
                ResetRetryLocked(now);
                _nextLanProbe = now;
            }
        }

        if (fellBack)
        {
            Interlocked.Increment(ref Counters.FellBackOnMove);
            _peer.SetEndpoint(Relay);
            _changed(PeerPath.Relay);
        }

        if (probe)
        {
            Probe(force: false);
        }
    }

    /// <summary>
    /// A session with the peer came up: call the peer (so it learns our candidates' kinds), and on the
    /// relay probe at once; the call goes through the relay then, so both sides probe together.
    /// </summary>
    public void OnSessionUp()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (_path == PeerPath.Relay)
            {
                ResetRetryLocked(_time.GetTimestamp());
            }
        }

        CallAndProbe();
    }

    /// <summary>
    /// This node's network changed (an address came or went): on the relay, call the peer and probe at
    /// once; direct, ping the path in use now (from the new source address if it moved, so the peer
    /// follows) and the peer's LAN candidates. When one of the host's addresses went away, a direct
    /// path may have been sent from it and be dead: the peer moves to the relay at once (it always
    /// works, and a switch keeps connections), the call goes through the relay so the peer learns our
    /// new candidates and probes back, and the first pong moves it to direct again. Waiting for the
    /// direct timeout instead stalls every connection for 6 s and more.
    /// </summary>
    /// <param name="addressLost">Whether one of the host's addresses went away.</param>
    public void OnNetworkChanged(bool addressLost = false)
    {
        Endpoint inUse;
        bool fellBack = false;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            // A burst of address events (DHCP, an interface flapping) probes once per half interval;
            // an address lost is never skipped (the path may be dead).
            long now = _time.GetTimestamp();
            if (!addressLost && _lastNetworkChange != long.MinValue && _time.GetElapsedTime(_lastNetworkChange, now) < _timing.ProbeInterval / 2)
            {
                return;
            }

            _lastNetworkChange = now;
            inUse = _path == PeerPath.Direct ? _inUse : default;
            if (addressLost && _path == PeerPath.Direct)
            {
                FallBackLocked(now);
                fellBack = true;
            }

            ResetRetryLocked(now);
            _nextLanProbe = now;
            _lastCallSent = long.MinValue;
        }

        if (fellBack)
        {
            Interlocked.Increment(ref Counters.FellBackOnMove);
            _peer.SetEndpoint(Relay);
            _changed(PeerPath.Relay);
        }
        else if (inUse.IsSet)
        {
            SendPing(inUse, NextRound());
        }

        CallAndProbe();
    }

    private int NextRound()
    {
        lock (_gate)
        {
            return ++_round;
        }
    }

    // Calls the peer (through the relay while relayed, else on the path in use) at most once per half
    // probe interval, then probes what is due.
    private void CallAndProbe()
    {
        bool call;
        Endpoint to;
        lock (_gate)
        {
            long now = _time.GetTimestamp();
            to = _path == PeerPath.Relay ? Relay : _inUse;
            call = _lastCallSent == long.MinValue || _time.GetElapsedTime(_lastCallSent, now) >= _timing.ProbeInterval / 2;
            if (call)
            {
                _lastCallSent = now;
            }
        }

        if (call)
        {
            var local = _localCandidates();
            Span<byte> message = stackalloc byte[PathControl.MaxLength];
            int length = PathControl.WriteCallMeMaybe(message, local);
            int sent = _peer.SendPathMessage(message[..length], to);
            if (sent > 0)
            {
                Interlocked.Add(ref _controlTx, sent);
                Interlocked.Increment(ref Counters.CallMeMaybeSent);
            }
            else
            {
                lock (_gate)
                {
                    _lastCallSent = long.MinValue; // no session yet: call when it comes up
                }
            }
        }

        Probe(force: true);
    }

    // A probe round now if one is due (force: the caller reset the schedule).
    private void Probe(bool force)
    {
        List<Endpoint>? targets = null;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            long now = _time.GetTimestamp();
            targets = CollectLocked(now, force);
        }

        Send(targets);
    }

    private List<Endpoint>? CollectLocked(long now, bool force)
    {
        List<Endpoint>? targets = null;
        if (_path == PeerPath.Relay)
        {
            if (force || now >= _nextRound)
            {
                _round++;
                targets = [];
                if (_direct.IsSet)
                {
                    targets.Add(_direct);
                }

                foreach (var c in CandidatesLocked())
                {
                    if (!targets.Contains(c.Endpoint))
                    {
                        targets.Add(c.Endpoint);
                    }
                }

                _nextRound = now + ToTicks(_retry);
                _retry = TimeSpan.FromTicks(Math.Min(_retry.Ticks * 2, _timing.MaxRetryInterval.Ticks));
            }
        }
        else if (KindLocked(_inUse) != CandidateKind.Local && now >= _nextLanProbe)
        {
            _nextLanProbe = now + ToTicks(_timing.LanProbeInterval);
            foreach (var c in CandidatesLocked())
            {
                if (c.Kind == CandidateKind.Local && c.Endpoint != _inUse)
                {
                    targets ??= [];
                    targets.Add(c.Endpoint);
                    if (targets.Count == 1)
                    {
                        _round++;
                    }
                }
            }
        }

        return targets;
    }

    private void Tick()
    {
        long now = _time.GetTimestamp();
        long tx = _peer.TxBytes;
        long dataTx = tx - Interlocked.Read(ref _controlTx);
        Endpoint ping = default;
        List<Endpoint>? targets;
        bool fellBack = false;
        bool keepalive = false;
        bool warm = false;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (dataTx != _lastTickDataTx)
            {
                _lastDataTx = now;
            }

            if (tx != _lastTickTx)
            {
                _lastTxChange = now;
            }

            if (_path == PeerPath.Direct)
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

                    ping = _inUse; // ask for an answer: the peer may simply have nothing to send
                }

                if (_silentSince != long.MinValue && _time.GetElapsedTime(_silentSince, now) >= _timing.DirectTimeout)
                {
                    FallBackLocked(now);
                    fellBack = true;
                    ping = default;
                }
                else if (!ping.IsSet && _time.GetElapsedTime(_lastTxChange, now) >= _timing.KeepaliveInterval)
                {
                    keepalive = true; // decided outside the lock (it may ask the TCP stack)
                    warm = _lastDataTx != long.MinValue && _time.GetElapsedTime(_lastDataTx, now) < _timing.ActiveWindow;
                }
            }

            _lastTick = now;
            _lastTickTx = tx;
            _lastTickDataTx = dataTx;
            targets = CollectLocked(now, force: false);
        }

        if (fellBack)
        {
            _peer.SetEndpoint(Relay);
            _changed(PeerPath.Relay);
        }

        if (keepalive && (warm || _carriesConnections?.Invoke() == true))
        {
            lock (_gate)
            {
                ping = _path == PeerPath.Direct ? _inUse : default;
            }

            if (ping.IsSet)
            {
                Interlocked.Increment(ref Counters.Keepalives);
            }
        }

        if (ping.IsSet)
        {
            SendPing(ping, NextRound());
        }

        Send(targets);
    }

    private void Send(List<Endpoint>? targets)
    {
        if (targets is null)
        {
            return;
        }

        int round;
        lock (_gate)
        {
            round = _round;
        }

        foreach (var endpoint in targets)
        {
            SendPing(endpoint, round);
        }
    }

    private void SendPing(Endpoint endpoint, int round)
    {
        Span<byte> id = stackalloc byte[8];
        RandomNumberGenerator.Fill(id);
        ulong txid = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(id);
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _probes.Sent(txid, endpoint, round, KeptEndpointsLocked);
        }

        Span<byte> message = stackalloc byte[PathControl.Length];
        PathControl.WriteProbe(message, PathControl.Ping, txid);
        int sent = _peer.SendPathMessage(message, endpoint);
        Interlocked.Add(ref _controlTx, sent);
    }

    // Endpoints whose probe results the status keeps when the log prunes.
    private IEnumerable<Endpoint> KeptEndpointsLocked()
    {
        foreach (var c in CandidatesLocked())
        {
            yield return c.Endpoint;
        }

        yield return _direct;
        yield return _inUse;
    }

    // The published endpoints and the announced ones, each once, with the kind the peer announced.
    private List<PathCandidate> CandidatesLocked()
    {
        var list = new List<PathCandidate>(_published.Count + _announced.Count);
        foreach (var e in _published)
        {
            if (e.IsSet)
            {
                list.Add(new PathCandidate(e, KindLocked(e)));
            }
        }

        foreach (var c in _announced)
        {
            if (list.Count >= 2 * PathControl.MaxCandidates)
            {
                break;
            }

            if (!_published.Contains(c.Endpoint))
            {
                list.Add(c);
            }
        }

        return list;
    }

    private bool IsKnownLocked(Endpoint endpoint) => _published.Contains(endpoint) || AnnouncedLocked(endpoint);

    private bool AnnouncedLocked(Endpoint endpoint)
    {
        foreach (var c in _announced)
        {
            if (c.Endpoint == endpoint)
            {
                return true;
            }
        }

        return false;
    }

    private CandidateKind KindLocked(Endpoint endpoint)
    {
        foreach (var c in _announced)
        {
            if (c.Endpoint == endpoint)
            {
                return c.Kind;
            }
        }

        return CandidateKind.Unknown;
    }

    private bool SwitchLocked(Endpoint source)
    {
        bool fromRelay = _path == PeerPath.Relay;
        _path = PeerPath.Direct;
        _inUse = source;
        _direct = source;
        HeardLocked();
        _nextLanProbe = _time.GetTimestamp() + ToTicks(_timing.LanProbeInterval);
        return fromRelay;
    }

    private void HeardLocked()
    {
        _lastDirectHeard = _time.GetTimestamp();
        _silentSince = long.MinValue;
    }

    private void FallBackLocked(long now)
    {
        _path = PeerPath.Relay;
        _silentSince = long.MinValue;
        if (_inUse.IsSet)
        {
            _direct = _inUse;
        }

        _inUse = default;
        _retry = _timing.ProbeInterval;
        _nextRound = now + ToTicks(_timing.ProbeInterval);
    }

    private void ResetRetryLocked(long now)
    {
        _retry = _timing.ProbeInterval;
        _nextRound = now;
    }

    private long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

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
