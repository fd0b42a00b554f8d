using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Stack;
using TunnelMesh.Net.Wire;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// The WireGuard protocol engine of one node: peers, the receiver-index table, handshakes with
/// mac1/mac2 and cookies, the allowed-IPs table, encryption of outgoing IP packets and decryption
/// of incoming transport messages.
/// </summary>
/// <remarks>
/// Datagrams arrive on the transport's receive thread (<see cref="OnDatagrams"/>); outgoing IP
/// packets arrive from the stack on any thread (<see cref="SendPacket"/>); timers fire on the
/// thread pool. Nothing here throws out to those callers: a bad datagram is dropped and counted.
/// </remarks>
internal sealed class WireGuardDevice : IDatagramReceiver, IPacketOutput
{
    private readonly ConcurrentDictionary<NodePublicKey, WireGuardPeer> _peers = new();

    /// <summary>The peers by their relay path (when the node has a relay): the relay authenticates who sent a message.</summary>
    private readonly ConcurrentDictionary<Endpoint, WireGuardPeer> _relayPeers = new();
    private readonly ConcurrentDictionary<uint, IndexEntry> _indices = new();
    private readonly AllowedIpsTable<WireGuardPeer> _allowedIps = new();
    private readonly Lock _handshakeGate = new();
    private readonly Lock _configGate = new(); // serialises peer additions, changes and removals
    private readonly CookieChecker _cookieChecker;
    private readonly HandshakeRateLimiter _rateLimiter;
    private readonly Action<PacketBuffer> _inbound;
    private readonly ILogger _logger;
    private long _loadWindowStart;
    private int _loadWindowCount;
    private long _underLoadUntil = long.MinValue;
    private int _disposed;

    public WireGuardDevice(
        NodePrivateKey privateKey,
        IDatagramTransport transport,
        Action<PacketBuffer> inbound,
        PacketBufferPool pool,
        DropCounters drops,
        TimeProvider time,
        ILogger logger)
    {
        Identity = new LocalIdentity(privateKey);
        Transport = transport;
        _inbound = inbound;
        Pool = pool;
        Drops = drops;
        Time = time;
        _logger = logger;
        _cookieChecker = new CookieChecker(Identity, time);
        _rateLimiter = new HandshakeRateLimiter(time);
        _loadWindowStart = time.GetTimestamp();
    }

    /// <summary>
    /// Handshake messages per second above which the device is "under load": it then answers
    /// initiations and responses without a valid mac2 with a cookie reply instead of doing the DH.
    /// </summary>
    internal int UnderLoadThreshold { get; set; } = 128;

    internal LocalIdentity Identity { get; }

    internal IDatagramTransport Transport { get; }

    internal PacketBufferPool Pool { get; }

    internal DropCounters Drops { get; }

    internal TimeProvider Time { get; }

    /// <summary>
    /// Takes received datagrams that are no WireGuard message (STUN answers to the node's binding
    /// requests share the socket). Consulted only after the message type matched none of 1–4, so
    /// WireGuard traffic never reaches it.
    /// </summary>
    internal StunClient? Stun { get; set; }

    /// <summary>Handshake initiations and responses sent and received, for statistics.</summary>
    internal long HandshakeMessagesReceived;

    public IEnumerable<WireGuardPeer> Peers => _peers.Values;

    /// <summary>Raised (on the receive thread) when a handshake completes on either side.</summary>
    internal event Action<WireGuardPeer>? HandshakeCompleted;

    /// <summary>Raised (on a receive or timer thread) when a peer moves between the relay and a direct path.</summary>
    internal event Action<WireGuardPeer, PeerPath>? PathChanged;

    /// <summary>The relay path of a key when the node has a relay (<see cref="EnableRelay"/>); null otherwise.</summary>
    private Func<NodePublicKey, Endpoint>? _relayEndpointFor;

    private PathTiming _pathTiming = PathTiming.Default;

    /// <summary>
    /// Gives the device a relay: peers added from now on start on it and move to direct UDP when a probe
    /// succeeds (<see cref="PeerPaths"/>). Call before adding peers.
    /// </summary>
    internal void EnableRelay(Func<NodePublicKey, Endpoint> relayEndpointFor, PathTiming timing)
    {
        _relayEndpointFor = relayEndpointFor;
        _pathTiming = timing;
    }

    /// <summary>This node's own candidates, sent to peers in a call-me-maybe (set before adding peers; none when unset).</summary>
    internal Func<IReadOnlyList<PathCandidate>>? LocalCandidates { get; set; }

    /// <summary>Whether the node has open connections to a peer, for the direct path's keepalive (set before adding peers).</summary>
    internal Func<WireGuardPeer, bool>? CarriesConnections { get; set; }

    /// <summary>This node's network changed: every peer's path choice probes again at once and calls its peer (see <see cref="PeerPaths.OnNetworkChanged"/>).</summary>
    /// <param name="addressLost">Whether one of the host's addresses went away (direct paths may be dead: they move to the relay until a probe answers).</param>
    internal void OnNetworkChanged(bool addressLost = false)
    {
        foreach (var peer in _peers.Values)
        {
            peer.Paths?.OnNetworkChanged(addressLost);
        }
    }

    /// <summary>Raised (on the receive thread) for every authenticated transport message, with its plaintext length (0 = keepalive).</summary>
    internal event Action<WireGuardPeer, int>? TransportReceived;

    public WireGuardPeer? FindPeer(NodePublicKey key) => _peers.GetValueOrDefault(key);

    /// <summary>Adds a peer (or replaces one with the same key, dropping its sessions) and its allowed IPs.</summary>
    public WireGuardPeer AddPeer(PeerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        lock (_configGate)
        {
            RemovePeerLocked(config.PublicKey);
            return AddPeerLocked(config);
        }
    }

    /// <summary>
    /// Adds the peer, or changes a running one in place: its allowed IPs are brought to the new set
    /// (prefixes added first, then the ones no longer listed removed, so a kept prefix never stops
    /// routing) and a new configured endpoint replaces the current one. Sessions, timers and
    /// counters of a changed peer carry on; the preshared key and keepalive of a running peer stay.
    /// </summary>
    /// <returns>True when the peer was added, false when an existing one was changed.</returns>
    public bool ConfigurePeer(PeerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        lock (_configGate)
        {
            if (Volatile.Read(ref _disposed) != 0)
            {
                return false;
            }

            if (!_peers.TryGetValue(config.PublicKey, out var peer))
            {
                AddPeerLocked(config);
                return true;
            }

            Span<byte> address = stackalloc byte[16];
            var wanted = new HashSet<(AddressFamily, UInt128, int)>();
            foreach (var network in config.AllowedIps)
            {
                network.BaseAddress.TryWriteBytes(address, out int n);
                _allowedIps.Insert(address[..n], network.PrefixLength, peer);
                wanted.Add((network.BaseAddress.AddressFamily, PrefixKey(network.BaseAddress), network.PrefixLength));
            }

            foreach (var (bytes, prefixLength) in _allowedIps.EntriesFor(peer))
            {
                var entry = new IPAddress(bytes);
                if (!wanted.Contains((entry.AddressFamily, PrefixKey(entry), prefixLength)))
                {
                    _allowedIps.Remove(bytes, prefixLength);
                }
            }

            peer.Reconfigure(config);
            return false;
        }
    }

    /// <summary>Removes a peer, its allowed IPs and its sessions.</summary>
    public bool RemovePeer(NodePublicKey key)
    {
        lock (_configGate)
        {
            return RemovePeerLocked(key);
        }
    }

    /// <summary>The prefixes routed to the peer with this key (empty when there is none).</summary>
    internal IReadOnlyList<IPNetwork> AllowedIpsOf(NodePublicKey key)
    {
        if (FindPeer(key) is not { } peer)
        {
            return [];
        }

        var result = new List<IPNetwork>();
        foreach (var (bytes, prefixLength) in _allowedIps.EntriesFor(peer))
        {
            result.Add(new IPNetwork(new IPAddress(bytes), prefixLength));
        }

        return result;
    }

    private WireGuardPeer AddPeerLocked(PeerConfig config)
    {
        var peer = new WireGuardPeer(this, config);
        Span<byte> address = stackalloc byte[16];
        foreach (var network in config.AllowedIps)
        {
            network.BaseAddress.TryWriteBytes(address, out int n);
            _allowedIps.Insert(address[..n], network.PrefixLength, peer);
        }

        if (_relayEndpointFor is { } relay)
        {
            var relayEndpoint = relay(config.PublicKey);
            peer.EnablePaths(relayEndpoint, _pathTiming, OnPathChanged, LocalCandidates, CarriesConnections);
            _relayPeers[relayEndpoint] = peer;
        }

        _peers[config.PublicKey] = peer;
        peer.Start();
        return peer;
    }

    private void OnPathChanged(WireGuardPeer peer, PeerPath path)
    {
        Log.PathChanged(_logger, peer.PublicKey, path, peer.Endpoint.ToString());
        PathChanged?.Invoke(peer, path);
    }

    private bool RemovePeerLocked(NodePublicKey key)
    {
        if (!_peers.TryRemove(key, out var peer))
        {
            return false;
        }

        _allowedIps.RemoveAll(peer);
        if (peer.Paths is { } paths)
        {
            _relayPeers.TryRemove(new KeyValuePair<Endpoint, WireGuardPeer>(paths.Relay, peer));
        }

        peer.Dispose();
        foreach (var (index, entry) in _indices)
        {
            if (entry.Peer == peer)
            {
                _indices.TryRemove(index, out _);
            }
        }

        return true;
    }

    // An address as a number (IPv4 in the low 32 bits; the family is kept beside it).
    private static UInt128 PrefixKey(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int n);
        return n == 4 ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    // ------------------------------------------------------------------ outgoing

    /// <summary>Routes an outgoing IP packet by its destination to a peer and sends it (takes ownership).</summary>
    public void SendPacket(PacketBuffer ipPacket)
    {
        var peer = RouteOutbound(ipPacket.Span);
        if (peer is null)
        {
            Drops.Increment(DropReason.NoRoute);
            ipPacket.Return();
            return;
        }

        peer.SendPacket(ipPacket);
    }

    /// <summary>Whether some peer's allowed IPs contain <paramref name="address"/>.</summary>
    public bool HasRouteTo(System.Net.IPAddress address) => PeerFor(address) is not null;

    /// <summary>The peer whose allowed IPs contain the IPv4 <paramref name="address"/> (host order), or null.</summary>
    internal WireGuardPeer? PeerForIPv4(uint address)
    {
        Span<byte> bytes = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, address);
        return _allowedIps.Lookup(bytes);
    }

    /// <summary>
    /// The peer whose allowed IPs contain <paramref name="address"/> (longest prefix), or null. Since
    /// inbound packets are dropped unless their source is in the sending peer's allowed IPs, this is
    /// also the peer any packet from <paramref name="address"/> came from.
    /// </summary>
    public WireGuardPeer? PeerFor(System.Net.IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        return address.TryWriteBytes(bytes, out int written) ? _allowedIps.Lookup(bytes[..written]) : null;
    }

    private WireGuardPeer? RouteOutbound(ReadOnlySpan<byte> packet) =>
        TryGetAddress(packet, source: false, out var destination) ? _allowedIps.Lookup(destination) : null;

    /// <summary>The source or destination address field of an IPv4 or IPv6 packet (4 or 16 bytes).</summary>
    private static bool TryGetAddress(ReadOnlySpan<byte> packet, bool source, out ReadOnlySpan<byte> address)
    {
        if (packet.Length >= 20 && packet[0] >> 4 == 4)
        {
            address = packet.Slice(source ? 12 : 16, 4);
            return true;
        }

        if (packet.Length >= 40 && packet[0] >> 4 == 6)
        {
            address = packet.Slice(source ? 8 : 24, 16);
            return true;
        }

        address = default;
        return false;
    }

    /// <summary>Sends a handshake initiation to the peer (rate-limited to one per REKEY_TIMEOUT unless retrying).</summary>
    internal void InitiateHandshake(WireGuardPeer peer, bool isRetry)
    {
        var endpoint = peer.Endpoint;
        if (!endpoint.IsSet || Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        var message = Pool.Rent();
        try
        {
            long now = Time.GetTimestamp();
            lock (_handshakeGate)
            {
                if (peer.Handshake.IsDisposed)
                {
                    return; // the peer was removed while a sender still held it
                }

                if (!isRetry && peer.LastSentHandshake != long.MinValue
                    && Time.GetElapsedTime(peer.LastSentHandshake, now) < ProtocolConstants.RekeyTimeout)
                {
                    return;
                }

                peer.LastSentHandshake = now;
                RemovePendingIndex(peer);
                uint index = AllocateIndex(new IndexEntry(peer, null));
                var span = message.Available[..WireGuardSpec.InitiationSize];
                peer.Handshake.CreateInitiation(span, index, Tai64N.FromDateTimeOffset(Time.GetUtcNow()));
                peer.Cookies.AddMacs(span);
                message.Length = WireGuardSpec.InitiationSize;
            }

            // Timers before sending: the response can be handled (and cancel the retransmission)
            // before Send returns; armed afterwards, the timer would start a needless handshake.
            peer.OnHandshakeInitiated();
            peer.OnAuthenticatedPacketTraversal();
            message.Endpoint = endpoint;
            Transport.Send(new ReadOnlySpan<PacketBuffer>(ref message));

            // On the relay, the initiation also goes straight to the peer's known UDP endpoint: a
            // response that comes back that way is a round trip, and the peer moves to direct.
            if (peer.Paths?.ProbeEndpoint is { IsSet: true } direct && endpoint.IsRelay)
            {
                message.Endpoint = direct;
                Transport.Send(new ReadOnlySpan<PacketBuffer>(ref message));
            }

            Log.HandshakeInitiated(_logger, peer.PublicKey, isRetry);
        }
        finally
        {
            message.Return();
        }
    }

    // ------------------------------------------------------------------ incoming

    /// <inheritdoc/>
    public void OnDatagrams(ReadOnlySpan<PacketBuffer> batch)
    {
        // What the received batch makes the stack send (ACKs, data the ACKs clock out) leaves in one batch too.
        TransmitBatch.Begin();
        try
        {
            ReceiveBatch(batch);
        }
        finally
        {
            TransmitBatch.End();
        }
    }

    private void ReceiveBatch(ReadOnlySpan<PacketBuffer> batch)
    {
        foreach (var datagram in batch)
        {
            bool handedOff = false;
            try
            {
                handedOff = HandleDatagram(datagram);
            }
#pragma warning disable CA1031 // a receive loop must survive anything a datagram does to it
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Drops.Increment(DropReason.MalformedMessage);
                Log.DatagramFailed(_logger, datagram.Endpoint.ToString(), ex);
            }
            finally
            {
                if (!handedOff)
                {
                    datagram.Return();
                }
            }
        }
    }

    // Returns true when the buffer's ownership passed on (to the stack).
    private bool HandleDatagram(PacketBuffer datagram)
    {
        var span = datagram.Span;
        if (span.Length < 4)
        {
            Drops.Increment(DropReason.MalformedMessage);
            return false;
        }

        // Type in the first byte, then three reserved zero bytes (read as one little-endian word).
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(span);
        switch (type)
        {
            case WireGuardSpec.TypeTransport:
                if (span.Length < WireGuardSpec.TransportMinSize)
                {
                    Drops.Increment(DropReason.MalformedMessage);
                    return false;
                }

                return HandleTransport(datagram);
            case WireGuardSpec.TypeInitiation:
                if (span.Length != WireGuardSpec.InitiationSize)
                {
                    Drops.Increment(DropReason.MalformedMessage);
                    return false;
                }

                HandleInitiation(datagram);
                return false;
            case WireGuardSpec.TypeResponse:
                if (span.Length != WireGuardSpec.ResponseSize)
                {
                    Drops.Increment(DropReason.MalformedMessage);
                    return false;
                }

                HandleResponse(datagram);
                return false;
            case WireGuardSpec.TypeCookieReply:
                if (span.Length != WireGuardSpec.CookieReplySize)
                {
                    Drops.Increment(DropReason.MalformedMessage);
                    return false;
                }

                HandleCookieReply(datagram);
                return false;
            default:
                if (Stun is { } stun && stun.TryAccept(span, datagram.Endpoint))
                {
                    return false;
                }

                Drops.Increment(DropReason.UnknownMessageType);
                return false;
        }
    }

    private bool HandleTransport(PacketBuffer datagram)
    {
        uint receiver = BinaryPrimitives.ReadUInt32LittleEndian(datagram.Span[WireGuardSpec.Transport.Receiver..]);
        if (!_indices.TryGetValue(receiver, out var entry) || entry.Keypair is not { } keypair)
        {
            Drops.Increment(DropReason.UnknownReceiverIndex);
            RenewStaleSession(datagram.Endpoint);
            return false;
        }

        var peer = entry.Peer;
        if (Time.GetElapsedTime(keypair.CreatedTimestamp) >= ProtocolConstants.RejectAfterTime)
        {
            Drops.Increment(DropReason.KeypairExpired);
            return false;
        }

        OpenResult result;
        lock (peer.ReceiveLock)
        {
            // The keypair may have been retired (and disposed) since the lookup.
            if (!_indices.TryGetValue(receiver, out var again) || !ReferenceEquals(again.Keypair, keypair))
            {
                Drops.Increment(DropReason.UnknownReceiverIndex);
                return false;
            }

            result = keypair.TryOpen(datagram);
        }

        switch (result)
        {
            case OpenResult.Ok:
                break;
            case OpenResult.Replay:
                Drops.Increment(DropReason.Replay);
                return false;
            case OpenResult.Expired:
                Drops.Increment(DropReason.KeypairExpired);
                return false;
            default:
                Drops.Increment(DropReason.DecryptionFailed);
                return false;
        }

        byte control = PathControl.KindOf(datagram.Span);
        if (control == 0)
        {
            peer.OnAuthenticatedFrom(datagram.Endpoint, PathEvidence.Transport);
        }
        peer.AddRx(datagram.Length + WireGuardSpec.TransportMinSize);
        var (promoted, wantRekey) = peer.OnReceivedWith(keypair);
        peer.OnAuthenticatedPacketReceived();
        if (promoted)
        {
            // The responder's session is confirmed: the handshake is complete on this side.
            peer.RecordHandshakeComplete();
            HandshakeCompleted?.Invoke(peer);
            peer.Paths?.OnSessionUp();
            peer.FlushStaged();
        }

        if (wantRekey)
        {
            InitiateHandshake(peer, isRetry: false);
        }

        if (control != 0)
        {
            // Ping, pong, call-me-maybe: the path choice's (pongs only count when they answer our pings).
            peer.OnPathMessage(datagram.Endpoint, control, datagram.Span);
            return false;
        }

        TransportReceived?.Invoke(peer, datagram.Length);

        if (datagram.Length == 0)
        {
            return false; // keepalive
        }

        peer.OnDataReceived();
        if (!TryGetAddress(datagram.Span, source: true, out var sourceAddress))
        {
            Drops.Increment(DropReason.MalformedPacket);
            return false;
        }

        var allowed = _allowedIps.Lookup(sourceAddress);
        if (!ReferenceEquals(allowed, peer))
        {
            Drops.Increment(DropReason.SourceNotAllowed);
            return false;
        }

        _inbound(datagram);
        return true;
    }

    /// <summary>
    /// A transport message for a session this device does not have, from a peer known by its relay path
    /// (the relay authenticated the sender's key): the peer still uses a session from before this node
    /// restarted. A handshake initiation (at most one per REKEY_TIMEOUT) renews it now; otherwise the peer
    /// would notice only after its new-handshake timer (15 s of sending without an answer).
    /// </summary>
    private void RenewStaleSession(Endpoint source)
    {
        if (source.IsRelay && _relayPeers.TryGetValue(source, out var peer))
        {
            InitiateHandshake(peer, isRetry: false);
        }
    }

    private void HandleInitiation(PacketBuffer datagram)
    {
        var message = datagram.Span;
        Interlocked.Increment(ref HandshakeMessagesReceived);
        if (!_cookieChecker.CheckMac1(message))
        {
            Drops.Increment(DropReason.InvalidMac1);
            return;
        }

        if (!PassesLoadCheck(datagram, senderIndex: BinaryPrimitives.ReadUInt32LittleEndian(message[WireGuardSpec.Initiation.Sender..])))
        {
            return;
        }

        WireGuardPeer? peer = null;
        bool flooded = false;
        uint? ourPendingIndex = null;
        var response = Pool.Rent();
        try
        {
            long now = Time.GetTimestamp();
            lock (_handshakeGate)
            {
                var result = NoiseHandshake.ConsumeInitiation(Identity, message, key =>
                {
                    var candidate = FindPeer(key);
                    if (candidate is null)
                    {
                        return null;
                    }

                    if (candidate.LastInitiationConsumed != long.MinValue
                        && Time.GetElapsedTime(candidate.LastInitiationConsumed, now) < ProtocolConstants.HandshakeInitiationRate)
                    {
                        flooded = true;
                        return null;
                    }

                    peer = candidate;
                    if (candidate.Handshake.State == HandshakeState.InitiationCreated)
                    {
                        ourPendingIndex = candidate.Handshake.LocalIndex;
                    }

                    return candidate.Handshake;
                }, out _);

                if (result != HandshakeResult.Ok || peer is null)
                {
                    Drops.Increment(result switch
                    {
                        HandshakeResult.Replay => DropReason.HandshakeReplay,
                        HandshakeResult.UnknownPeer when flooded => DropReason.HandshakeRateLimited,
                        _ => DropReason.HandshakeFailed,
                    });
                    return;
                }

                peer.LastInitiationConsumed = now;
                if (ourPendingIndex is { } pending && _indices.TryGetValue(pending, out var stale) && stale.Keypair is null)
                {
                    // Their initiation replaced ours in the handshake state: ours can no longer be answered.
                    _indices.TryRemove(pending, out _);
                }

                var entry = new IndexEntry(peer, null);
                uint index = AllocateIndex(entry);
                var span = response.Available[..WireGuardSpec.ResponseSize];
                peer.Handshake.CreateResponse(span, index);
                peer.Cookies.AddMacs(span);
                response.Length = WireGuardSpec.ResponseSize;
                var keypair = peer.Handshake.DeriveKeypair(now);
                _indices[index] = entry with { Keypair = keypair };
                peer.InstallResponderKeypair(keypair);
            }

            peer.OnAuthenticatedFrom(datagram.Endpoint, PathEvidence.Initiation);
            peer.OnAuthenticatedPacketTraversal();
            response.Endpoint = datagram.Endpoint;
            Transport.Send(new ReadOnlySpan<PacketBuffer>(ref response));
            Log.HandshakeAnswered(_logger, peer.PublicKey);
        }
        finally
        {
            response.Return();
        }
    }

    private void HandleResponse(PacketBuffer datagram)
    {
        var message = datagram.Span;
        Interlocked.Increment(ref HandshakeMessagesReceived);
        uint receiver = BinaryPrimitives.ReadUInt32LittleEndian(message[WireGuardSpec.Response.Receiver..]);
        if (!_indices.TryGetValue(receiver, out var entry) || entry.Keypair is not null)
        {
            Drops.Increment(DropReason.UnknownReceiverIndex);
            return;
        }

        if (!_cookieChecker.CheckMac1(message))
        {
            Drops.Increment(DropReason.InvalidMac1);
            return;
        }

        if (!PassesLoadCheck(datagram, senderIndex: BinaryPrimitives.ReadUInt32LittleEndian(message[WireGuardSpec.Response.Sender..])))
        {
            return;
        }

        var peer = entry.Peer;
        lock (_handshakeGate)
        {
            var handshake = peer.Handshake;
            if (handshake.State != HandshakeState.InitiationCreated || handshake.LocalIndex != receiver)
            {
                Drops.Increment(DropReason.HandshakeFailed);
                return;
            }

            if (handshake.ConsumeResponse(message) != HandshakeResult.Ok)
            {
                Drops.Increment(DropReason.HandshakeFailed);
                return;
            }

            var keypair = handshake.DeriveKeypair(Time.GetTimestamp());
            _indices[receiver] = entry with { Keypair = keypair };
            peer.InstallInitiatorKeypair(keypair);
        }

        peer.OnAuthenticatedFrom(datagram.Endpoint, PathEvidence.Response);
        peer.OnHandshakeComplete();
        peer.OnAuthenticatedPacketReceived();
        Log.HandshakeComplete(_logger, peer.PublicKey);
        HandshakeCompleted?.Invoke(peer);
        peer.Paths?.OnSessionUp();

        // Confirm the session to the responder: staged packets, or a keepalive.
        peer.FlushStaged(keepaliveIfEmpty: true);
    }

    private void HandleCookieReply(PacketBuffer datagram)
    {
        uint receiver = BinaryPrimitives.ReadUInt32LittleEndian(datagram.Span[WireGuardSpec.CookieReply.Receiver..]);
        if (!_indices.TryGetValue(receiver, out var entry) || !entry.Peer.Cookies.ConsumeReply(datagram.Span))
        {
            Drops.Increment(DropReason.InvalidCookieReply);
        }
    }

    // Under load, a handshake message must carry a valid mac2 (else we answer with a cookie) and
    // its source must be within the per-source rate.
    private bool PassesLoadCheck(PacketBuffer datagram, uint senderIndex)
    {
        if (!UnderLoad())
        {
            return true;
        }

        if (!_cookieChecker.CheckMac2(datagram.Span, datagram.Endpoint))
        {
            Drops.Increment(DropReason.CookieRequired);
            var reply = Pool.Rent();
            try
            {
                var span = reply.Available[..WireGuardSpec.CookieReplySize];
                _cookieChecker.CreateReply(span, datagram.Span, senderIndex, datagram.Endpoint);
                reply.Length = WireGuardSpec.CookieReplySize;
                reply.Endpoint = datagram.Endpoint;
                Transport.Send(new ReadOnlySpan<PacketBuffer>(ref reply));
            }
            finally
            {
                reply.Return();
            }

            return false;
        }

        if (!_rateLimiter.Allow(datagram.Endpoint))
        {
            Drops.Increment(DropReason.HandshakeRateLimited);
            return false;
        }

        return true;
    }

    // Counts handshake messages per one-second window; over the threshold, the device is under
    // load for the next second (like wireguard-go's handshake-queue test, without a queue).
    private bool UnderLoad()
    {
        long now = Time.GetTimestamp();
        if (Time.GetElapsedTime(_loadWindowStart, now) >= TimeSpan.FromSeconds(1))
        {
            _loadWindowStart = now;
            _loadWindowCount = 0;
        }

        if (++_loadWindowCount > UnderLoadThreshold)
        {
            _underLoadUntil = now + Time.TimestampFrequency;
        }

        return now < _underLoadUntil;
    }

    // ------------------------------------------------------------------ index table and keypairs

    private uint AllocateIndex(IndexEntry entry)
    {
        Span<byte> random = stackalloc byte[4];
        while (true)
        {
            RandomNumberGenerator.Fill(random);
            uint index = BinaryPrimitives.ReadUInt32LittleEndian(random);
            if (_indices.TryAdd(index, entry))
            {
                return index;
            }
        }
    }

    // Under the handshake gate: forget the index of an unanswered initiation of ours.
    private void RemovePendingIndex(WireGuardPeer peer)
    {
        var handshake = peer.Handshake;
        if (handshake.State is HandshakeState.InitiationCreated
            && _indices.TryGetValue(handshake.LocalIndex, out var entry) && entry.Peer == peer && entry.Keypair is null)
        {
            _indices.TryRemove(handshake.LocalIndex, out _);
        }
    }

    /// <summary>Removes a keypair from the index table and zeroes it (caller holds the peer's keypair locks).</summary>
    internal void RetireKeypair(Keypair? keypair)
    {
        if (keypair is null)
        {
            return;
        }

        if (_indices.TryGetValue(keypair.LocalIndex, out var entry) && ReferenceEquals(entry.Keypair, keypair))
        {
            _indices.TryRemove(keypair.LocalIndex, out _);
        }

        keypair.Dispose();
    }

    internal void ClearHandshake(WireGuardPeer peer)
    {
        lock (_handshakeGate)
        {
            RemovePendingIndex(peer);
            peer.Handshake.Clear();
        }
    }

    /// <summary>Clears the peer's handshake and wipes its peer-lifetime secrets: the peer is being removed.</summary>
    internal void ForgetHandshake(WireGuardPeer peer)
    {
        lock (_handshakeGate)
        {
            RemovePendingIndex(peer);
            peer.Handshake.Dispose();
        }
    }

    internal void OnHandshakeGaveUp(WireGuardPeer peer) => Log.HandshakeGaveUp(_logger, peer.PublicKey, ProtocolConstants.RekeyAttemptTime.TotalSeconds);

    /// <summary>Runs timer work for a peer; logs instead of letting an exception escape to the pool.</summary>
    internal void Guard(WireGuardPeer peer, Action<WireGuardPeer> action)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        try
        {
            action(peer);
        }
#pragma warning disable CA1031 // timer callbacks must not crash the process
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.TimerFailed(_logger, peer.PublicKey, ex);
        }
    }

    /// <summary>Number of live receiver indices (for tests and statistics).</summary>
    internal int IndexCount => _indices.Count;

    /// <summary>Stops all peers' timers and forgets all keys. The transport is the caller's.</summary>
    public void Shutdown()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var key in _peers.Keys)
        {
            RemovePeer(key);
        }

        lock (_handshakeGate)
        {
            Identity.Dispose();
        }
    }

    private sealed record IndexEntry(WireGuardPeer Peer, Keypair? Keypair);
}
