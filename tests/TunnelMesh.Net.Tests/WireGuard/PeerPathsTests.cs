using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.WireGuardTests;

/// <summary>
/// The path choice of one peer (<see cref="PeerPaths"/>) against a fake peer and a fake clock: what it
/// pings, when, and which answers move the path.
/// </summary>
public sealed class PeerPathsTests
{
    private static readonly Endpoint RelayEndpoint = Endpoint.ForRelay(7);
    private static readonly Endpoint Lan = Endpoint.FromIPv4(0xC0000202, 51820);       // 192.0.2.2:51820, the peer's interface
    private static readonly Endpoint Wan = Endpoint.FromIPv4(0xCB007105, 40001);       // 203.0.113.5:40001, its NAT's mapping
    private static readonly Endpoint Elsewhere = Endpoint.FromIPv4(0xC6336409, 9999);  // 198.51.100.9:9999
    private static readonly PathTiming Timing = PathTiming.Default;

    [Fact]
    public void Starts_on_the_relay_pings_every_candidate_and_a_matching_pong_moves_it_direct()
    {
        var (time, peer, paths) = Create([Lan, Wan]);
        Assert.Equal(PeerPath.Relay, paths.Path);
        Assert.Empty(peer.Pings());

        time.Advance(Timing.ProbeInterval);
        var pings = peer.Pings();
        Assert.Equal([Lan, Wan], pings.Select(p => p.To).ToArray());

        var wanPing = pings.Single(p => p.To == Wan);
        paths.OnPong(Wan, wanPing.Txid);
        Assert.Equal(PeerPath.Direct, paths.Path);
        Assert.Equal(Wan, peer.Endpoint);
        var snapshot = paths.Snapshot();
        Assert.False(snapshot.Lan); // its kind is not known: over the internet
        Assert.Equal(Wan, snapshot.InUse);
        Assert.True(snapshot.LastProbe is { Answered: true } last && last.Endpoint == Wan);
        Assert.Contains(snapshot.Candidates, c => c.Endpoint == Wan && c.LastPong is not null && c.RoundTrip is not null);
        Assert.Contains(snapshot.Candidates, c => c.Endpoint == Lan && c.LastPing is not null && c.LastPong is null);
    }

    [Fact]
    public void A_pong_that_answers_no_ping_or_comes_from_elsewhere_or_comes_twice_moves_nothing()
    {
        var (time, peer, paths) = Create([Lan, Wan]);
        time.Advance(Timing.ProbeInterval);
        var ping = peer.Pings().Single(p => p.To == Wan);

        paths.OnPong(Wan, ping.Txid ^ 1); // forged id
        paths.OnPong(Elsewhere, ping.Txid); // the right id from another address: proves nothing, and uses the id up
        Assert.Equal(PeerPath.Relay, paths.Path);
        Assert.Equal(RelayEndpoint, peer.Endpoint);
        Assert.Equal(1, paths.Counters.UnmatchedPongs);
        Assert.Equal(1, paths.Counters.MisdirectedPongs);

        paths.OnPong(Wan, ping.Txid); // replayed after it was used
        Assert.Equal(PeerPath.Relay, paths.Path);
        Assert.Equal(2, paths.Counters.UnmatchedPongs);

        var lanPing = peer.Pings().Single(p => p.To == Lan);
        paths.OnPong(Lan, lanPing.Txid);
        paths.OnPong(Lan, lanPing.Txid); // a second copy counts no more
        Assert.Equal(PeerPath.Direct, paths.Path);
        Assert.Equal(3, paths.Counters.UnmatchedPongs);

        // Through the relay, a pong proves nothing about a direct path.
        var (time2, peer2, paths2) = Create([Wan]);
        time2.Advance(Timing.ProbeInterval);
        paths2.OnPong(RelayEndpoint, peer2.Pings().Single().Txid);
        Assert.Equal(PeerPath.Relay, paths2.Path);
    }

    [Fact]
    public void While_relayed_probe_rounds_back_off_to_the_cap_and_start_over_on_a_network_change_a_call_or_new_candidates()
    {
        var (time, peer, paths) = Create([Wan]);
        var gaps = new List<TimeSpan>();
        var last = time.GetUtcNow();
        int seen = 0;
        for (int i = 0; i < 200; i++)
        {
            time.Advance(Timing.ProbeInterval);
            int n = peer.Pings().Count;
            if (n != seen)
            {
                Assert.Equal(seen + 1, n); // one candidate: one ping a round
                seen = n;
                gaps.Add(time.GetUtcNow() - last);
                last = time.GetUtcNow();
            }
        }

        var s = TimeSpan.FromSeconds(1);
        Assert.Equal([2 * s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 32 * s], gaps.Take(7).ToArray());
        Assert.All(gaps.Skip(5), g => Assert.Equal(Timing.MaxRetryInterval, g));

        // A network change: a round at once, then 2 s again.
        time.Advance(Timing.ProbeInterval * 3);
        seen = peer.Pings().Count;
        paths.OnNetworkChanged();
        Assert.Equal(seen + 1, peer.Pings().Count);
        time.Advance(Timing.ProbeInterval);
        Assert.Equal(seen + 2, peer.Pings().Count);

        // Let it back off again, then the peer calls: a round at once.
        time.Advance(TimeSpan.FromMinutes(3));
        seen = peer.Pings().Count;
        paths.OnCallMeMaybe([new PathCandidate(Wan, CandidateKind.Reflexive)]);
        Assert.Equal(seen + 1, peer.Pings().Count);

        // New candidates from the coordinator: a round at once, the new one included, and a call to the peer.
        time.Advance(TimeSpan.FromMinutes(3));
        seen = peer.Pings().Count;
        int calls = peer.Calls().Count;
        paths.OfferDirect(Wan, [Wan, Elsewhere]);
        Assert.Equal(seen + 2, peer.Pings().Count);
        Assert.Contains(peer.Pings(), p => p.To == Elsewhere);
        Assert.Equal(calls + 1, peer.Calls().Count);
    }

    [Fact]
    public void When_an_address_of_ours_goes_away_a_direct_peer_moves_to_the_relay_at_once_is_called_through_it_and_comes_back_on_a_pong()
    {
        PathCandidate[] ours = [new(Endpoint.FromIPv4(0xC0000203, 51820), CandidateKind.Local)];
        var (time, peer, paths) = Create([Wan], () => ours);
        time.Advance(Timing.ProbeInterval);
        paths.OnPong(Wan, peer.Pings().Single(p => p.To == Wan).Txid);
        Assert.Equal(PeerPath.Direct, paths.Path);

        // Only an address added: the path stays, and is pinged from wherever the kernel now sends it.
        int pings = peer.Pings().Count;
        paths.OnNetworkChanged(addressLost: false);
        Assert.Equal(PeerPath.Direct, paths.Path);
        Assert.Equal(pings + 1, peer.Pings().Count);
        Assert.Equal(Wan, peer.Pings()[^1].To);

        // An address lost, even right after another change: on the relay at once, without waiting for
        // the direct timeout, the call goes through the relay, and a round probes the peer again.
        int calls = peer.Calls().Count;
        paths.OnNetworkChanged(addressLost: true);
        Assert.Equal(PeerPath.Relay, paths.Path);
        Assert.Equal(RelayEndpoint, peer.Endpoint);
        Assert.Equal(1, paths.Counters.MoveFallbacks);
        Assert.Equal(RelayEndpoint, peer.Calls()[calls].To);
        var again = peer.Pings()[^1];
        Assert.Equal(Wan, again.To);

        paths.OnPong(Wan, again.Txid);
        Assert.Equal(PeerPath.Direct, paths.Path);
        Assert.Equal(Wan, peer.Endpoint);
    }

    [Fact]
    public void A_peer_that_stops_announcing_the_endpoint_in_use_moves_to_the_relay_and_its_new_candidates_are_probed()
    {
        var moved = Endpoint.FromIPv4(0xCB007105, 40777); // the same NAT, a new mapping (the peer's host was renumbered)
        var (time, peer, paths) = Create([Wan]);
        paths.OnCallMeMaybe([new PathCandidate(Wan, CandidateKind.Reflexive)]);
        paths.OnPong(Wan, peer.Pings().Single(p => p.To == Wan).Txid);
        Assert.Equal(PeerPath.Direct, paths.Path);

        // The same list again, or one that still has the endpoint in use: nothing moves.
        time.Advance(Timing.ProbeInterval);
        paths.OnCallMeMaybe([new PathCandidate(Wan, CandidateKind.Reflexive), new PathCandidate(Elsewhere, CandidateKind.Reflexive)]);
        Assert.Equal(PeerPath.Direct, paths.Path);

        time.Advance(Timing.ProbeInterval);
        paths.OnCallMeMaybe([new PathCandidate(moved, CandidateKind.Reflexive)]);
        Assert.Equal(PeerPath.Relay, paths.Path);
        Assert.Equal(RelayEndpoint, peer.Endpoint);
        var ping = peer.Pings().Single(p => p.To == moved);
        paths.OnPong(moved, ping.Txid);
        Assert.Equal(PeerPath.Direct, paths.Path);
        Assert.Equal(moved, peer.Endpoint);
    }

    [Fact]
    public void A_direct_endpoint_the_peer_never_announced_is_not_given_up_because_of_its_list()
    {
        // A hard NAT's port, learned from the peer's own traffic: never in what it announces.
        var roaming = Endpoint.FromIPv4(0xCB007105, 51111);
        var (_, peer, paths) = Create([Wan]);
        paths.OnCallMeMaybe([new PathCandidate(Wan, CandidateKind.Reflexive)]);
        paths.OnAuthenticated(roaming, PathEvidence.Transport);
        Assert.Equal(PeerPath.Direct, paths.Path);
        Assert.Equal(roaming, peer.Endpoint);

        paths.OnCallMeMaybe([new PathCandidate(Elsewhere, CandidateKind.Reflexive)]);
        Assert.Equal(PeerPath.Direct, paths.Path);
        Assert.Equal(roaming, peer.Endpoint);
        Assert.Equal(0, paths.Counters.MoveFallbacks);
    }

    [Fact]
    public void A_session_coming_up_on_the_relay_calls_the_peer_through_the_relay_with_our_candidates_and_probes_at_once()
    {
        PathCandidate[] ours = [new(Endpoint.FromIPv4(0xC0000203, 51820), CandidateKind.Local), new(Endpoint.FromIPv4(0xCB007106, 40002), CandidateKind.Reflexive)];
        var (_, peer, paths) = Create([Wan], () => ours);
        paths.OnSessionUp();

        var call = Assert.Single(peer.Calls());
        Assert.Equal(RelayEndpoint, call.To);
        Assert.Equal(ours, PathControl.ReadCallMeMaybe(call.Message));
        Assert.Single(peer.Pings(), p => p.To == Wan);
        Assert.Equal(1, paths.Counters.CallsSent);

        // Again right away (a rekey, a burst): no second call within half a probe interval.
        paths.OnSessionUp();
        Assert.Single(peer.Calls());
    }

    [Fact]
    public void Direct_over_the_internet_it_probes_the_peers_LAN_candidates_slowly_and_moves_to_one_that_answers()
    {
        var (time, peer, paths) = Create([Wan]);
        time.Advance(Timing.ProbeInterval);
        paths.OnPong(Wan, peer.Pings().Single().Txid);
        Assert.Equal(PeerPath.Direct, paths.Path);

        // The peer tells its kinds: Lan is one of its interfaces.
        paths.OnCallMeMaybe([new PathCandidate(Lan, CandidateKind.Local), new PathCandidate(Wan, CandidateKind.Reflexive)]);
        var lanPing = Assert.Single(peer.Pings(), p => p.To == Lan); // a LAN probe at once, since a LAN candidate appeared
        Assert.False(paths.Snapshot().Lan);

        // No answer: the next LAN probe only after the LAN probe interval.
        KeepDirectAlive(time, paths, peer, Wan, Timing.LanProbeInterval - Timing.ProbeInterval);
        Assert.Single(peer.Pings(), p => p.To == Lan);
        KeepDirectAlive(time, paths, peer, Wan, Timing.ProbeInterval * 2);
        Assert.Equal(2, peer.Pings().Count(p => p.To == Lan));

        lanPing = peer.Pings().Last(p => p.To == Lan);
        paths.OnPong(Lan, lanPing.Txid);
        Assert.Equal(Lan, peer.Endpoint);
        Assert.True(paths.Snapshot().Lan);

        // The peer's traffic from its (known) internet endpoint does not pull the path back off the LAN ...
        paths.OnAuthenticated(Wan, PathEvidence.Transport);
        Assert.Equal(Lan, peer.Endpoint);

        // ... but an unknown source is roaming, and the path follows it.
        paths.OnAuthenticated(Elsewhere, PathEvidence.Transport);
        Assert.Equal(Elsewhere, peer.Endpoint);
        Assert.Equal(PeerPath.Direct, paths.Path);
    }

    [Fact]
    public void Pongs_are_answered_within_the_per_peer_budget()
    {
        var (time, peer, paths) = Create([Wan]);
        int answered = 0;
        for (int i = 0; i < 1000; i++)
        {
            answered += paths.AnswerPing(Wan, (ulong)i) ? 1 : 0;
        }

        Assert.Equal(Timing.MaxPongsPerInterval, answered);
        Assert.Equal(Timing.MaxPongsPerInterval, peer.Sent.Count(m => PathControl.KindOf(m.Message) == PathControl.Pong));
        Assert.Equal(1000 - Timing.MaxPongsPerInterval, paths.PongsRefused);

        // The next interval has a budget again; each pong echoes its ping's id.
        time.Advance(Timing.ProbeInterval);
        Assert.True(paths.AnswerPing(Wan, 0xABCDEF));
        Assert.Equal(0xABCDEFUL, PathControl.TxidOf(peer.Sent[^1].Message));
    }

    [Fact]
    public void An_idle_direct_path_gets_a_keepalive_ping_within_25_s_while_it_carries_connections_and_none_when_it_does_not()
    {
        bool connections = true;
        var (time, peer, paths) = Create([Wan], carriesConnections: () => connections);
        time.Advance(Timing.ProbeInterval);
        paths.OnPong(Wan, peer.Pings().Single().Txid);
        int before = peer.Pings().Count(p => p.To == Wan);

        // Idle (nothing sent) with an open connection: a ping at most 25 s after the last send.
        for (int i = 0; i < 13 && peer.Pings().Count(p => p.To == Wan) == before; i++)
        {
            time.Advance(Timing.ProbeInterval);
        }

        Assert.Equal(before + 1, peer.Pings().Count(p => p.To == Wan));
        Assert.True(time.GetUtcNow() - peer.FirstPingAt <= TimeSpan.FromSeconds(25), $"{time.GetUtcNow() - peer.FirstPingAt} without traffic");
        Assert.Equal(1, paths.Counters.KeepalivePings);
        paths.OnPong(Wan, peer.Pings()[^1].Txid);

        // Answered every time, it stays direct for minutes, a ping at least every 25 s.
        var lastPing = time.GetUtcNow();
        for (int i = 0; i < 100; i++)
        {
            int n = peer.Pings().Count;
            time.Advance(Timing.ProbeInterval);
            if (peer.Pings().Count > n)
            {
                Assert.True(time.GetUtcNow() - lastPing <= TimeSpan.FromSeconds(25), $"a gap of {time.GetUtcNow() - lastPing}");
                lastPing = time.GetUtcNow();
                paths.OnPong(Wan, peer.Pings()[^1].Txid);
            }
        }

        Assert.Equal(PeerPath.Direct, paths.Path);
        Assert.True(paths.Counters.KeepalivePings >= 8);

        // No connection and no data for longer than the active window: no more pings.
        connections = false;
        time.Advance(Timing.ActiveWindow);
        int quiet = peer.Pings().Count;
        for (int i = 0; i < 60; i++)
        {
            time.Advance(Timing.ProbeInterval);
        }

        Assert.Equal(quiet, peer.Pings().Count);
        Assert.Equal(PeerPath.Direct, paths.Path); // nothing sent, so nothing went unanswered

        // Data again (the peer's counter moves): the path stays warm without any connection for the active window.
        long keepalives = paths.Counters.KeepalivePings;
        peer.TxBytes += 1000;
        for (int i = 0; i < 14; i++)
        {
            int n = peer.Pings().Count;
            time.Advance(Timing.ProbeInterval);
            if (peer.Pings().Count > n)
            {
                paths.OnPong(Wan, peer.Pings()[^1].Txid);
            }
        }

        Assert.Equal(keepalives + 1, paths.Counters.KeepalivePings);
        Assert.Equal(PeerPath.Direct, paths.Path);
    }

    [Fact]
    public void A_silent_direct_path_falls_back_to_the_relay_and_probing_starts_over()
    {
        var (time, peer, paths) = Create([Wan]);
        time.Advance(Timing.ProbeInterval);
        paths.OnPong(Wan, peer.Pings().Single().Txid);
        int before = peer.Pings().Count;
        for (int i = 0; i < 5 && paths.Path == PeerPath.Direct; i++)
        {
            peer.TxBytes += 100; // sending, hearing nothing
            time.Advance(Timing.ProbeInterval);
        }

        Assert.Equal(PeerPath.Relay, paths.Path);
        Assert.Equal(RelayEndpoint, peer.Endpoint);
        int afterFallback = peer.Pings().Count;
        Assert.True(afterFallback > before, "liveness pings while silent");
        time.Advance(Timing.ProbeInterval);
        Assert.Equal(afterFallback + 1, peer.Pings().Count); // probing again at the first interval
    }

    [Fact]
    public void Call_me_maybe_round_trips_and_malformed_path_messages_are_not_path_messages()
    {
        PathCandidate[] candidates =
        [
            new(Endpoint.FromIPv4(0xC0000202, 51820), CandidateKind.Local),
            new(Endpoint.FromIPEndPoint(System.Net.IPEndPoint.Parse("[2001:db8::5]:4000")), CandidateKind.Reflexive),
            new(Endpoint.FromIPv4(0xCB007105, 5351), CandidateKind.PortMapped),
            new(RelayEndpoint, CandidateKind.Local), // never sent
        ];
        var buffer = new byte[PathControl.MaxLength];
        int n = PathControl.WriteCallMeMaybe(buffer, candidates);
        Assert.Equal(0, n % 16);
        Assert.Equal(PathControl.CallMeMaybe, PathControl.KindOf(buffer.AsSpan(0, n)));
        Assert.Equal(candidates[..3], PathControl.ReadCallMeMaybe(buffer.AsSpan(0, n)));

        // A kind from a newer node reads as unknown.
        buffer[PathControl.Length] = 200;
        Assert.Equal(CandidateKind.Unknown, PathControl.ReadCallMeMaybe(buffer.AsSpan(0, n))[0].Kind);

        // A count larger than the message, or than the limit; a ping of the wrong length; an IP packet.
        buffer[2] = 5;
        Assert.Equal(0, PathControl.KindOf(buffer.AsSpan(0, n)));
        buffer[2] = 17;
        Assert.Equal(0, PathControl.KindOf(buffer));
        var ping = new byte[32];
        PathControl.WriteProbe(ping, PathControl.Ping, 1);
        Assert.Equal(0, PathControl.KindOf(ping));
        Assert.Equal(PathControl.Ping, PathControl.KindOf(ping.AsSpan(0, 16)));
        ping[0] = 0x45;
        Assert.Equal(0, PathControl.KindOf(ping.AsSpan(0, 16)));
    }

    // Ticks for `span`, answering every ping to `inUse` (the direct path stays up).
    private static void KeepDirectAlive(FakeTimeProvider time, PeerPaths paths, FakePeer peer, Endpoint inUse, TimeSpan span)
    {
        for (var t = TimeSpan.Zero; t < span; t += Timing.ProbeInterval)
        {
            paths.OnAuthenticated(inUse, PathEvidence.Transport);
            time.Advance(Timing.ProbeInterval);
        }
    }

    private static (FakeTimeProvider Time, FakePeer Peer, PeerPaths Paths) Create(
        Endpoint[] candidates, Func<IReadOnlyList<PathCandidate>>? local = null, Func<bool>? carriesConnections = null)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var peer = new FakePeer(time) { Endpoint = RelayEndpoint };
        var paths = new PeerPaths(peer, RelayEndpoint, candidates[0], candidates, time, Timing, _ => { }, local, carriesConnections);
        return (time, peer, paths);
    }

    private sealed class FakePeer(TimeProvider time) : IPathPeer
    {
        public List<(byte[] Message, Endpoint To)> Sent { get; } = [];

        public Endpoint Endpoint { get; set; }

        public long TxBytes { get; set; }

        public DateTimeOffset FirstPingAt { get; private set; }

        public void SetEndpoint(Endpoint endpoint) => Endpoint = endpoint;

        public int SendPathMessage(ReadOnlySpan<byte> plaintext, Endpoint endpoint)
        {
            Sent.Add((plaintext.ToArray(), endpoint));
            TxBytes += plaintext.Length + 32;
            if (FirstPingAt == default && PathControl.KindOf(plaintext) == PathControl.Ping)
            {
                FirstPingAt = time.GetUtcNow();
            }
            return plaintext.Length + 32;
        }

        public List<(Endpoint To, ulong Txid)> Pings() =>
            Sent.Where(m => PathControl.KindOf(m.Message) == PathControl.Ping).Select(m => (m.To, PathControl.TxidOf(m.Message))).ToList();

        public List<(byte[] Message, Endpoint To)> Calls() =>
            Sent.Where(m => PathControl.KindOf(m.Message) == PathControl.CallMeMaybe).ToList();
    }
}
