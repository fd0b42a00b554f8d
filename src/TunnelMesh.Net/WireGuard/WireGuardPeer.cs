using System.Net;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// One WireGuard peer of a <see cref="WireGuardDevice"/>: its handshake, its keypairs (current,
/// previous, next, rotated as wireguard-go does), its endpoint (updated by roaming), the packets
/// staged while no session exists, the whitepaper's timers and its counters.
/// </summary>
/// <remarks>
/// Locks, always taken in this order: the device's handshake gate (handshake state), then
/// <see cref="ReceiveLock"/> (opening with a keypair), then <see cref="SendLock"/> (sealing, the
/// staged queue). Keypair rotation holds both keypair locks, so a keypair is never disposed while
/// a thread uses it. Timer state has its own small lock and never calls out while holding it.
/// </remarks>
internal sealed class WireGuardPeer : IPathPeer
{
    /// <summary>Most packets kept while waiting for a handshake (as wireguard-go's staged queue).</summary>
    internal const int MaxStagedPackets = 128;

    private readonly WireGuardDevice _device;
    private readonly Queue<PacketBuffer> _staged = new();
    private readonly Lock _timerGate = new();
    private readonly ITimer _retransmitHandshakeTimer;
    private readonly ITimer _sendKeepaliveTimer;
    private readonly ITimer _newHandshakeTimer;
    private readonly ITimer _zeroKeyMaterialTimer;
    private readonly ITimer _persistentKeepaliveTimer;

    private PeerConfig _config;
    private EndpointBox? _endpoint;
    private Keypair? _current;
    private Keypair? _previous;
    private Keypair? _next;

    private bool _retransmitPending;
    private bool _sendKeepalivePending;
    private bool _newHandshakePending;
    private bool _zeroKeyMaterialPending;
    private bool _needAnotherKeepalive;
    private int _handshakeAttempts;
    private bool _rekeyOnReceiveSent;

    private long _rxBytes;
    private long _txBytes;
    private long _handshakes;
    private long _lastHandshakeUtcTicks;
    private bool _disposed;
    private readonly ProbeBudget _pongBudget;

    internal WireGuardPeer(WireGuardDevice device, PeerConfig config)
    {
        _device = device;
        _config = config;
        PublicKey = config.PublicKey;
        Handshake = new NoiseHandshake(device.Identity, config.PublicKey, config.PresharedKey);
        Cookies = new CookieGenerator(config.PublicKey, device.Time);
        if (config.Endpoint.IsSet)
        {
            _endpoint = new EndpointBox(config.Endpoint);
        }

        var time = device.Time;
        _pongBudget = new ProbeBudget(time, PathTiming.Default.MaxPongsPerInterval, PathTiming.Default.ProbeInterval);
        _retransmitHandshakeTimer = time.CreateTimer(static s => ((WireGuardPeer)s!).OnRetransmitHandshake(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _sendKeepaliveTimer = time.CreateTimer(static s => ((WireGuardPeer)s!).OnSendKeepalive(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _newHandshakeTimer = time.CreateTimer(static s => ((WireGuardPeer)s!).OnNewHandshake(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _zeroKeyMaterialTimer = time.CreateTimer(static s => ((WireGuardPeer)s!).OnZeroKeyMaterial(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _persistentKeepaliveTimer = time.CreateTimer(static s => ((WireGuardPeer)s!).OnPersistentKeepalive(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The peer's configuration as given (replaced by <see cref="WireGuardDevice.ConfigurePeer"/>).</summary>
    public PeerConfig Config => Volatile.Read(ref _config);

    /// <summary>The peer's static public key.</summary>
    public NodePublicKey PublicKey { get; }

    /// <summary>Handshake state; mutated only under the device's handshake gate.</summary>
    internal NoiseHandshake Handshake { get; }

    /// <summary>mac1/mac2 for messages to this peer.</summary>
    internal CookieGenerator Cookies { get; }

    /// <summary>Serialises opening with this peer's keypairs.</summary>
    internal Lock ReceiveLock { get; } = new();

    /// <summary>Serialises sealing with this peer's keypairs and the staged queue.</summary>
    internal Lock SendLock { get; } = new();

    /// <summary>When we last sent an initiation (TimeProvider timestamp); under the handshake gate.</summary>
    internal long LastSentHandshake { get; set; } = long.MinValue;

    /// <summary>When we last accepted an initiation from this peer; under the handshake gate.</summary>
    internal long LastInitiationConsumed { get; set; } = long.MinValue;

    /// <summary>
    /// The path choice when the node has a relay (then the endpoint is the chosen path); null without
    /// one (then the endpoint is configured, then the source of the newest authenticated packet).
    /// </summary>
    internal PeerPaths? Paths { get; private set; }

    /// <summary>The path packets to the peer take now (always direct without a relay).</summary>
    internal PeerPath CurrentPath => Paths?.Path ?? PeerPath.Direct;

    /// <summary>The endpoint packets go to: configured, then the source of the newest authenticated packet.</summary>
    public Endpoint Endpoint => Volatile.Read(ref _endpoint)?.Value ?? default;

    /// <summary>The current sending keypair, if any.</summary>
    internal Keypair? Current => Volatile.Read(ref _current);

    internal Keypair? Next => Volatile.Read(ref _next);

    internal Keypair? Previous => Volatile.Read(ref _previous);

    public long RxBytes => Interlocked.Read(ref _rxBytes);

    public long TxBytes => Interlocked.Read(ref _txBytes);

    public long Handshakes => Interlocked.Read(ref _handshakes);

    public DateTimeOffset? LastHandshake
    {
        get
        {
            long ticks = Interlocked.Read(ref _lastHandshakeUtcTicks);
            return ticks == 0 ? null : new DateTimeOffset(ticks, TimeSpan.Zero);
        }
    }

    internal int StagedCount
    {
        get
        {
            lock (SendLock)
            {
                return _staged.Count;
            }
        }
    }

    /// <summary>Roaming: moves the peer to the source of an authenticated packet.</summary>
    internal void SetEndpoint(Endpoint endpoint)
    {
        var box = Volatile.Read(ref _endpoint);
        if (box is null || box.Value != endpoint)
        {
            Volatile.Write(ref _endpoint, new EndpointBox(endpoint));
        }
    }

    /// <summary>
    /// Takes a new configuration for the same key (under the device's configuration gate). A new
    /// configured endpoint replaces the current one; an unchanged one keeps what roaming learned.
    /// Sessions, timers and counters carry on.
    /// </summary>
    internal void Reconfigure(PeerConfig config)
    {
        var old = Volatile.Read(ref _config);
        Volatile.Write(ref _config, config);
        if (Paths is { } paths)
        {
            if (config.Endpoint.IsSet && (config.Endpoint != old.Endpoint || !SameCandidates(config.Candidates, old.Candidates)))
            {
                paths.OfferDirect(config.Endpoint, config.Candidates ?? []); // the path choice decides when to use them
            }
        }
        else if (config.Endpoint.IsSet && config.Endpoint != old.Endpoint)
        {
            SetEndpoint(config.Endpoint);
        }
    }

    internal void AddRx(long bytes) => Interlocked.Add(ref _rxBytes, bytes);

    /// <summary>Puts the peer on the relay and starts choosing its path (before <see cref="Start"/>).</summary>
    internal void EnablePaths(Endpoint relay, PathTiming timing, Action<WireGuardPeer, PeerPath> changed, Func<IReadOnlyList<PathCandidate>>? localCandidates, Func<WireGuardPeer, bool>? carriesConnections)
    {
        Paths = new PeerPaths(
            this,
            relay,
            Config.Endpoint,
            Config.Candidates ?? [],
            _device.Time,
            timing,
            path => changed(this, path),
            localCandidates,
            carriesConnections is null ? null : () => carriesConnections(this));
        SetEndpoint(relay);
    }

    /// <summary>An authenticated message arrived from <paramref name="source"/>: roaming, or the path choice when there is a relay.</summary>
    internal void OnAuthenticatedFrom(Endpoint source, PathEvidence evidence)
    {
        if (Paths is { } paths)
        {
            paths.OnAuthenticated(source, evidence);
        }
        else
        {
            SetEndpoint(source);
        }
    }

    /// <summary>
    /// An authenticated path message (<see cref="PathControl"/>) of <paramref name="kind"/> arrived from
    /// <paramref name="source"/>: a ping is answered (within the pong budget), a pong and a call-me-maybe
    /// go to the path choice. Without a relay, a ping or pong only roams the endpoint, as any
    /// authenticated packet does, and a call-me-maybe is ignored.
    /// </summary>
    internal void OnPathMessage(Endpoint source, byte kind, ReadOnlySpan<byte> plaintext)
    {
        var paths = Paths;
        switch (kind)
        {
            case PathControl.Ping:
                OnAuthenticatedFrom(source, PathEvidence.Ping);
                ulong txid = PathControl.TxidOf(plaintext);
                bool answered = paths is not null ? paths.AnswerPing(source, txid) : AnswerPingWithoutPaths(source, txid);
                if (!answered)
                {
                    _device.Drops.Increment(DropReason.PathProbeRateLimited);
                }

                break;
            case PathControl.Pong when paths is not null:
                paths.OnPong(source, PathControl.TxidOf(plaintext));
                break;
            case PathControl.Pong:
                SetEndpoint(source);
                break;
            case PathControl.CallMeMaybe:
                paths?.OnCallMeMaybe(PathControl.ReadCallMeMaybe(plaintext));
                break;
        }
    }

    private bool AnswerPingWithoutPaths(Endpoint source, ulong txid)
    {
        if (!_pongBudget.TryTake())
        {
            return false;
        }

        Span<byte> message = stackalloc byte[PathControl.Length];
        PathControl.WriteProbe(message, PathControl.Pong, txid);
        SendPathMessage(message, source);
        return true;
    }

    void IPathPeer.SetEndpoint(Endpoint endpoint) => SetEndpoint(endpoint);

    /// <summary>
    /// Sends a path message (<see cref="PathControl"/>) to <paramref name="endpoint"/>, sealed with the
    /// current session; nothing when there is none. It does not touch the WireGuard timers. Returns the bytes sent.
    /// </summary>
    public int SendPathMessage(ReadOnlySpan<byte> plaintext, Endpoint endpoint)
    {
        var packet = _device.Pool.Rent();
        try
        {
            plaintext.CopyTo(packet.Available);
            packet.Length = plaintext.Length;
            lock (SendLock)
            {
                var keypair = _current;
                if (_disposed || keypair is null
                    || _device.Time.GetElapsedTime(keypair.CreatedTimestamp) >= ProtocolConstants.RejectAfterTime
                    || !keypair.TrySeal(packet))
                {
                    return 0;
                }

                packet.Endpoint = endpoint;
                Interlocked.Add(ref _txBytes, packet.Length);
                _device.Transport.Send(new ReadOnlySpan<PacketBuffer>(ref packet));
                return packet.Length;
            }
        }
        finally
        {
            packet.Return();
        }
    }

    /// <summary>
    /// Encrypts and sends an IP packet (takes ownership), or stages it and asks for a handshake
    /// when no usable session exists.
    /// </summary>
    internal void SendPacket(PacketBuffer packet)
    {
        bool wantHandshake = false;
        lock (SendLock)
        {
            if (_disposed)
            {
                _device.Drops.Increment(DropReason.NoSession);
                packet.Return();
                return;
            }

            // Keep order: while packets are staged, new ones queue behind them.
            if (_staged.Count != 0 || !TrySealAndSend(packet, out wantHandshake))
            {
                Stage(packet);
                wantHandshake = true;
            }
        }

        if (wantHandshake)
        {
            _device.InitiateHandshake(this, isRetry: false);
        }
    }

    /// <summary>Sends a keepalive (an empty transport message) if a session exists and nothing is staged.</summary>
    internal void SendKeepalive()
    {
        bool wantHandshake = false;
        bool stagedEmpty;
        bool sent = false;
        var packet = _device.Pool.Rent();
        lock (SendLock)
        {
            stagedEmpty = _staged.Count == 0;
            if (stagedEmpty && !_disposed)
            {
                sent = TrySealAndSend(packet, out wantHandshake);

                // No session: a keepalive is not worth staging, but it asks for one (as wireguard-go does).
                wantHandshake |= !sent;
            }
        }

        if (!sent)
        {
            packet.Return();
        }

        if (!stagedEmpty)
        {
            FlushStaged();
        }

        if (wantHandshake)
        {
            _device.InitiateHandshake(this, isRetry: false);
        }
    }

    /// <summary>Sends the staged packets on the current keypair; a keepalive if none were staged and <paramref name="keepaliveIfEmpty"/>.</summary>
    internal void FlushStaged(bool keepaliveIfEmpty = false)
    {
        bool wantHandshake = false;
        bool sentAny = false;
        lock (SendLock)
        {
            while (_staged.Count > 0)
            {
                var packet = _staged.Peek();
                if (!TrySealAndSend(packet, out bool rekey))
                {
                    wantHandshake = true;
                    break;
                }

                wantHandshake |= rekey;
                sentAny = true;
                _staged.Dequeue(); // sent: TrySealAndSend took it
            }
        }

        if (!sentAny && keepaliveIfEmpty && !wantHandshake)
        {
            SendKeepalive();
        }

        if (wantHandshake)
        {
            _device.InitiateHandshake(this, isRetry: false);
        }
    }

    // Under SendLock. Seals in place and sends, taking the packet (returned to the pool once sent,
    // here or at the end of the thread's TransmitBatch); false, packet untouched, when no usable keypair.
    private bool TrySealAndSend(PacketBuffer packet, out bool wantRekey)
    {
        wantRekey = false;
        var keypair = _current;
        var endpoint = Endpoint;
        if (keypair is null || !endpoint.IsSet)
        {
            return false;
        }

        // Age is the peer's to check (the keypair has no clock); the message limit is TrySeal's.
        var age = _device.Time.GetElapsedTime(keypair.CreatedTimestamp);
        if (age >= ProtocolConstants.RejectAfterTime)
        {
            return false;
        }

        int plaintextLength = packet.Length;
        if (!keypair.TrySeal(packet))
        {
            return false;
        }

        // Timers first: the answer can arrive (and cancel the new-handshake timer) before Send returns.
        OnAuthenticatedPacketSent();
        if (plaintextLength > 0)
        {
            OnDataSent();
        }

        packet.Endpoint = endpoint;
        Interlocked.Add(ref _txBytes, packet.Length);
        if (!TransmitBatch.TryAdd(_device.Transport, packet))
        {
            _device.Transport.Send(new ReadOnlySpan<PacketBuffer>(ref packet));
            packet.Return();
        }

        wantRekey = keypair.IsInitiator && (age >= ProtocolConstants.RekeyAfterTime || keypair.SendCounter >= ProtocolConstants.RekeyAfterMessages);
        return true;
    }

    // Under SendLock.
    private void Stage(PacketBuffer packet)
    {
        if (_staged.Count >= MaxStagedPackets)
        {
            _staged.Dequeue().Return();
            _device.Drops.Increment(DropReason.NoSession);
        }

        _staged.Enqueue(packet);
    }

    private void DropStaged()
    {
        lock (SendLock)
        {
            _device.Drops.Add(DropReason.NoSession, _staged.Count);
            while (_staged.Count > 0)
            {
                _staged.Dequeue().Return();
            }
        }
    }

    /// <summary>Initiator side: a handshake just completed; the new keypair becomes current (under the handshake gate).</summary>
    internal void InstallInitiatorKeypair(Keypair keypair)
    {
        lock (ReceiveLock)
        {
            lock (SendLock)
            {
                var previous = _previous;
                var next = _next;
                var current = _current;
                if (next is not null)
                {
                    _next = null;
                    _previous = next;
                    _device.RetireKeypair(current);
                }
                else
                {
                    _previous = current;
                }

                _device.RetireKeypair(previous);
                Volatile.Write(ref _current, keypair);
                _rekeyOnReceiveSent = false;
            }
        }

        OnSessionDerived();
    }

    /// <summary>Responder side: the new keypair waits in "next" until the initiator uses it (under the handshake gate).</summary>
    internal void InstallResponderKeypair(Keypair keypair)
    {
        lock (ReceiveLock)
        {
            lock (SendLock)
            {
                var next = _next;
                var previous = _previous;
                Volatile.Write(ref _next, keypair);
                _previous = null;
                _device.RetireKeypair(next);
                _device.RetireKeypair(previous);
            }
        }

        OnSessionDerived();
    }

    /// <summary>
    /// Called after a transport message authenticated with <paramref name="keypair"/>: confirms a
    /// responder's next keypair (promoting it), and says whether an initiator should rekey early.
    /// </summary>
    internal (bool Promoted, bool WantRekey) OnReceivedWith(Keypair keypair)
    {
        bool promoted = false;
        bool wantRekey = false;
        if (ReferenceEquals(Volatile.Read(ref _next), keypair))
        {
            lock (ReceiveLock)
            {
                lock (SendLock)
                {
                    if (ReferenceEquals(_next, keypair))
                    {
                        var old = _previous;
                        _previous = _current;
                        Volatile.Write(ref _current, keypair);
                        _next = null;
                        _device.RetireKeypair(old);
                        _rekeyOnReceiveSent = false;
                        promoted = true;
                    }
                }
            }
        }
        else if (keypair.IsInitiator && ReferenceEquals(Volatile.Read(ref _current), keypair) && !_rekeyOnReceiveSent
                 && _device.Time.GetElapsedTime(keypair.CreatedTimestamp) >= ProtocolConstants.RekeyOnReceiveAge)
        {
            _rekeyOnReceiveSent = true;
            wantRekey = true;
        }

        return (promoted, wantRekey);
    }

    internal void RecordHandshakeComplete()
    {
        Interlocked.Increment(ref _handshakes);
        Interlocked.Exchange(ref _lastHandshakeUtcTicks, _device.Time.GetUtcNow().UtcTicks);
    }

    /// <summary>Drops every keypair and the handshake state (zero-key-material timer, removal).</summary>
    private void ZeroKeyMaterial()
    {
        _device.ClearHandshake(this);
        lock (ReceiveLock)
        {
            lock (SendLock)
            {
                _device.RetireKeypair(_previous);
                _device.RetireKeypair(_current);
                _device.RetireKeypair(_next);
                _previous = null;
                Volatile.Write(ref _current, null);
                _next = null;
            }
        }
    }

    // ---- timers (wireguard-go's timers.go, the whitepaper's section 6) ----

    /// <summary>We sent an initiation: retry after REKEY_TIMEOUT plus jitter.</summary>
    internal void OnHandshakeInitiated()
    {
        var jitter = TimeSpan.FromTicks(Random.Shared.NextInt64(ProtocolConstants.MaxRekeyJitter.Ticks));
        lock (_timerGate)
        {
            if (_disposed)
            {
                return;
            }

            _retransmitPending = true;
            _retransmitHandshakeTimer.Change(ProtocolConstants.RekeyTimeout + jitter, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Our initiation was answered.</summary>
    internal void OnHandshakeComplete()
    {
        lock (_timerGate)
        {
            _retransmitPending = false;
            _retransmitHandshakeTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _handshakeAttempts = 0;
        }

        RecordHandshakeComplete();
    }

    private void OnSessionDerived()
    {
        lock (_timerGate)
        {
            if (_disposed)
            {
                return;
            }

            _zeroKeyMaterialPending = true;
            _zeroKeyMaterialTimer.Change(ProtocolConstants.ZeroKeyMaterialAfter, Timeout.InfiniteTimeSpan);
        }
    }

    private void OnDataSent()
    {
        lock (_timerGate)
        {
            if (!_newHandshakePending && !_disposed)
            {
                _newHandshakePending = true;
                _newHandshakeTimer.Change(ProtocolConstants.KeepaliveTimeout + ProtocolConstants.RekeyTimeout, Timeout.InfiniteTimeSpan);
            }
        }
    }

    internal void OnDataReceived()
    {
        lock (_timerGate)
        {
            if (_disposed)
            {
                return;
            }

            if (!_sendKeepalivePending)
            {
                _sendKeepalivePending = true;
                _sendKeepaliveTimer.Change(ProtocolConstants.KeepaliveTimeout, Timeout.InfiniteTimeSpan);
            }
            else
            {
                _needAnotherKeepalive = true;
            }
        }
    }

    private void OnAuthenticatedPacketSent()
    {
        lock (_timerGate)
        {
            _sendKeepalivePending = false;
            _sendKeepaliveTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }

        OnAuthenticatedPacketTraversal();
    }

    internal void OnAuthenticatedPacketReceived()
    {
        lock (_timerGate)
        {
            _newHandshakePending = false;
            _newHandshakeTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }

        OnAuthenticatedPacketTraversal();
    }

    internal void OnAuthenticatedPacketTraversal()
    {
        var interval = Config.PersistentKeepalive;
        if (interval is { } i && i > TimeSpan.Zero)
        {
            lock (_timerGate)
            {
                if (!_disposed)
                {
                    _persistentKeepaliveTimer.Change(i, Timeout.InfiniteTimeSpan);
                }
            }
        }
    }

    /// <summary>Starts the persistent keepalive, if configured (it sends one right away, as wg does).</summary>
    internal void Start()
    {
        if (Config.PersistentKeepalive is { } i && i > TimeSpan.Zero && Endpoint.IsSet)
        {
            _device.Guard(this, static p => p.SendKeepalive());
        }
    }

    private void OnRetransmitHandshake() => _device.Guard(this, static p =>
    {
        bool giveUp;
        lock (p._timerGate)
        {
            if (!p._retransmitPending || p._disposed)
            {
                return;
            }

            p._retransmitPending = false;
            giveUp = p._handshakeAttempts >= ProtocolConstants.MaxHandshakeAttempts;
            if (!giveUp)
            {
                p._handshakeAttempts++;
            }
            else
            {
                p._handshakeAttempts = 0;
                if (!p._zeroKeyMaterialPending)
                {
                    p._zeroKeyMaterialPending = true;
                    p._zeroKeyMaterialTimer.Change(ProtocolConstants.ZeroKeyMaterialAfter, Timeout.InfiniteTimeSpan);
                }
            }
        }

        if (giveUp)
        {
            p._device.OnHandshakeGaveUp(p);
            p.DropStaged();
        }
        else
        {
            p._device.InitiateHandshake(p, isRetry: true);
        }
    });

    private void OnSendKeepalive() => _device.Guard(this, static p =>
    {
        bool again;
        lock (p._timerGate)
        {
            if (!p._sendKeepalivePending || p._disposed)
            {
                return;
            }

            p._sendKeepalivePending = false;
            again = p._needAnotherKeepalive;
            p._needAnotherKeepalive = false;
        }

        p.SendKeepalive();
        if (again)
        {
            p.OnDataReceived();
        }
    });

    private void OnNewHandshake() => _device.Guard(this, static p =>
    {
        lock (p._timerGate)
        {
            if (!p._newHandshakePending || p._disposed)
            {
                return;
            }

            p._newHandshakePending = false;
        }

        // We sent data and heard nothing back for 15 s: the session may be dead; start over.
        p._device.InitiateHandshake(p, isRetry: false);
    });

    private void OnZeroKeyMaterial() => _device.Guard(this, static p =>
    {
        lock (p._timerGate)
        {
            if (!p._zeroKeyMaterialPending || p._disposed)
            {
                return;
            }

            p._zeroKeyMaterialPending = false;
        }

        p.ZeroKeyMaterial();
    });

    private void OnPersistentKeepalive() => _device.Guard(this, static p => p.SendKeepalive());

    /// <summary>Stops the timers, drops the staged packets and forgets every key.</summary>
    internal void Dispose()
    {
        lock (_timerGate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _retransmitHandshakeTimer.Dispose();
            _sendKeepaliveTimer.Dispose();
            _newHandshakeTimer.Dispose();
            _zeroKeyMaterialTimer.Dispose();
            _persistentKeepaliveTimer.Dispose();
        }

        Paths?.Dispose();
        DropStaged();
        ZeroKeyMaterial();
        _device.ForgetHandshake(this);
        Cookies.Dispose();
    }

    private static bool SameCandidates(IReadOnlyList<Endpoint>? a, IReadOnlyList<Endpoint>? b) =>
        (a ?? []).SequenceEqual(b ?? []);

    private sealed class EndpointBox(Endpoint value)
    {
        public Endpoint Value { get; } = value;
    }
}

/// <summary>A peer's static configuration, as the device uses it.</summary>
/// <param name="PublicKey">The peer's static public key.</param>
/// <param name="PresharedKey">The preshared key (all zero when none).</param>
/// <param name="Endpoint">Where packets go first (wg's Endpoint; with a coordinator, the first usable published endpoint).</param>
/// <param name="Candidates">With a coordinator, every usable published endpoint of the peer: the direct paths that
/// are probed while the peer is on the relay. Empty for a static peer (its <paramref name="Endpoint"/> is the one).</param>
/// <param name="AllowedIps">The peer's allowed IPs.</param>
/// <param name="PersistentKeepalive">wg's PersistentKeepalive, if any.</param>
internal sealed record PeerConfig(
    NodePublicKey PublicKey,
    byte[] PresharedKey,
    Endpoint Endpoint,
    IReadOnlyList<IPNetwork> AllowedIps,
    TimeSpan? PersistentKeepalive,
    IReadOnlyList<Endpoint>? Candidates = null);
