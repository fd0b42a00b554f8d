using TunnelMesh.Net.Stack.Tcp;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Stack.Tcp;

/// <summary>
/// Loss recovery and ACK policy of one stack against a scripted peer under a manual clock: ACKs
/// and RSTs from SND.MAX, ACK fields of old duplicates, SACK-guided repair after a timeout (and
/// go-back-N once the scoreboard is distrusted), lost-retransmission detection, RFC 5827 early
/// retransmit, the RFC 8985 tail loss probe, RTT samples from timestamp echoes, the separate SACK
/// ACK after a full data segment, and one ACK per received batch.
/// </summary>
/// <remarks>
/// The peer offers MSS 1000 and SACK (no timestamps unless a test says so), so every full segment
/// is 1000 bytes, the initial window is 10 segments (RFC 6928), and after the 100 ms handshake
/// SRTT = 100 ms, RTO = 300 ms. <c>S(i)</c> is the first sequence number of the stack's i-th data segment.
/// </remarks>
public sealed class TcpLossRecoveryTests
{
    private const ushort ServicePort = 80;
    private const uint PeerIss = 0xFFFF_FFF0; // the peer's numbers cross the wrap
    private const int Mss = 1000;
    private const int InitialWindowSegments = 10;

    private static readonly TimeSpan Rtt = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Rto = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan Tick = TimeSpan.FromTicks(1);

    /// <summary>One connection with the numbers both sides are at.</summary>
    private sealed class Link
    {
        public required TcpHarness H { get; init; }

        public required TcpConnection Connection { get; init; }

        public required ushort LocalPort { get; init; }

        /// <summary>The stack's first data sequence number (ISS + 1).</summary>
        public required uint DataStart { get; init; }

        /// <summary>The peer's next sequence number: what the stack acknowledges.</summary>
        public uint RcvNxt { get; set; } = PeerIss + 1;

        /// <summary>When set, the peer sends timestamps with this TSval (raised by each segment) and <see cref="Echo"/>.</summary>
        public uint? PeerClock { get; set; }

        public uint Echo { get; set; }

        public TcpCounters Counters => new(Connection.Counters);

        public uint S(int segment) => unchecked(DataStart + (uint)(segment * Mss));

        public void Send(TcpFlags flags, uint seq, uint ack, byte[]? data = null, params SackBlock[] sacks)
        {
            var options = TcpOptions.None;
            if (PeerClock is { } clock)
            {
                options.HasTimestamps = true;
                options.TimestampValue = clock;
                options.TimestampEcho = Echo;
                PeerClock = clock + 1;
            }

            options.SetSackBlocks(sacks);
            H.Deliver(new Segment(ServicePort, LocalPort, seq, ack, flags, 65535) { Options = options, Payload = data ?? [] });
        }

        /// <summary>A pure ACK from the peer at RCV.NXT.</summary>
        public void Ack(uint ack, params SackBlock[] sacks) => Send(TcpFlags.Ack, RcvNxt, ack, null, sacks);

        /// <summary>SACK block covering the stack's segments [from, to).</summary>
        public SackBlock Sacked(int from, int to) => new(S(from), S(to));

        /// <summary>Takes the next segment: data of <paramref name="length"/> bytes at <paramref name="seq"/>, acknowledging RCV.NXT.</summary>
        public Segment ExpectData(uint seq, int length = Mss)
        {
            var segment = H.Next();
            Assert.True(segment.Has(TcpFlags.Ack), segment.ToString());
            Assert.False(segment.Has(TcpFlags.Syn) || segment.Has(TcpFlags.Rst), segment.ToString());
            Assert.True(seq == segment.Seq, $"expected data at {seq}, got {segment}");
            Assert.True(length == segment.Payload.Length, $"expected {length} bytes at {seq}, got {segment}");
            Assert.Equal(RcvNxt, segment.Ack);
            return segment;
        }

        /// <summary>Takes the next segment: a pure ACK at <paramref name="seq"/> acknowledging RCV.NXT.</summary>
        public Segment ExpectAck(uint seq)
        {
            var segment = H.Next();
            Assert.True(segment.Flags == TcpFlags.Ack, $"expected a pure ACK, got {segment}");
            Assert.Equal(seq, segment.Seq);
            Assert.Equal(RcvNxt, segment.Ack);
            Assert.Empty(segment.Payload);
            return segment;
        }
    }

    /// <summary>A snapshot of the counters that tests compare in one assertion.</summary>
    private readonly record struct TcpCounters(long Retransmissions, long FastRetransmits, long Timeouts, long TailLossProbes, long LostRetransmissions)
    {
        public TcpCounters(TcpConnectionCounters c)
            : this(c.Retransmissions, c.FastRetransmits, c.Timeouts, c.TailLossProbes, c.LostRetransmissions)
        {
        }
    }

    /// <summary>Dials the peer: SYN, <paramref name="rtt"/> (100 ms by default), SYN-ACK, the stack's ACK.</summary>
    private static async Task<Link> OpenAsync(TcpHarness h, bool sack = true, bool timestamps = false, MeshTcpOptions? options = null, TimeSpan? rtt = null)
    {
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, options ?? MeshTcpOptions.Default, CancellationToken.None);
        var syn = h.Next();
        var link = new Link { H = h, Connection = h.Connection, LocalPort = syn.SourcePort, DataStart = syn.Seq + 1 };
        h.Advance(rtt ?? Rtt);
        var synOptions = TcpOptions.None;
        synOptions.MaxSegmentSize = (ushort)(Mss + (timestamps ? TcpConstants.TimestampOptionSpace : 0));
        synOptions.SackPermitted = sack;
        if (timestamps)
        {
            synOptions.HasTimestamps = true;
            synOptions.TimestampValue = 1000;
            synOptions.TimestampEcho = syn.Options.TimestampValue;
            link.PeerClock = 1001;
            link.Echo = syn.Options.TimestampValue;
        }

        h.Deliver(new Segment(ServicePort, link.LocalPort, PeerIss, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, 65535) { Options = synOptions });
        Assert.Same(link.Connection, await connect);
        link.ExpectAck(link.DataStart);
        h.AssertNothingSent();
        Assert.Equal(Mss, link.Connection.SegmentSize);
        Assert.Equal(InitialWindowSegments * Mss, link.Connection.CongestionWindow);
        return link;
    }

    private static async Task WriteSegmentsAsync(Link link, int bytes)
    {
        await link.Connection.WriteAsync(new byte[bytes], CancellationToken.None);
    }

    private static void ExpectSegments(Link link, int from, int to)
    {
        for (int i = from; i < to; i++)
        {
            link.ExpectData(link.S(i));
        }
    }

    // ================================================================== (a) ACKs and RSTs from SND.MAX

    [Fact]
    public async Task After_go_back_n_a_pure_ack_and_a_reset_carry_snd_max_not_snd_nxt()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h, sack: false);
        await WriteSegmentsAsync(link, 3 * Mss);
        ExpectSegments(link, 0, 3);

        // The timeout sends SND.NXT back to SND.UNA: one segment under the loss window.
        h.Advance(Rto);
        link.ExpectData(link.S(0));
        h.AssertNothingSent();

        // Data from the peer (sent before ours arrived: it acknowledges nothing new) earns a delayed
        // ACK. Its sequence number is SND.MAX: a peer that holds all three segments would drop an
        // ACK at SND.NXT = S(1) as an old duplicate.
        link.Send(TcpFlags.Ack | TcpFlags.Psh, link.RcvNxt, link.S(0), new byte[100]);
        link.RcvNxt += 100;
        h.AssertNothingSent();
        h.Advance(TcpConstants.DelayedAck);
        link.ExpectAck(link.S(3));

        link.Connection.Abort();
        var rst = h.Next();
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(link.S(3), rst.Seq);
        Assert.Equal(link.RcvNxt, rst.Ack);
        Assert.Equal(TcpState.Closed, link.Connection.State);
    }

    // ================================================================== (b) old duplicates

    [Fact]
    public async Task An_old_duplicate_still_has_its_ack_field_taken_and_is_answered_with_an_ack()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h, sack: false);
        var old = link.RcvNxt;
        link.Send(TcpFlags.Ack | TcpFlags.Psh, old, link.S(0), new byte[100]);
        link.RcvNxt += 100;
        h.Advance(TcpConstants.DelayedAck);
        link.ExpectAck(link.S(0));

        await WriteSegmentsAsync(link, 2 * Mss);
        ExpectSegments(link, 0, 2);

        // The peer's timer retransmits its 100 bytes (entirely below RCV.NXT), now acknowledging our
        // data. RFC 9293 would drop the segment whole; its ACK field is current, so it counts.
        h.Advance(50);
        link.Send(TcpFlags.Ack | TcpFlags.Psh, old, link.S(2), new byte[100]);
        link.ExpectAck(link.S(2)); // at once: tells the peer it need not send those bytes again
        h.AssertNothingSent();
        Assert.Equal(1, h.Drops.Get(DropReason.TcpUnacceptable));
        Assert.Equal(100, link.Connection.Counters.BytesReceived);

        // SND.UNA moved: no retransmission ever follows, and new data goes out at once.
        h.Advance(TimeSpan.FromSeconds(10));
        h.AssertNothingSent();
        Assert.Equal(0, link.Connection.Counters.Timeouts);
        await WriteSegmentsAsync(link, Mss);
        link.ExpectData(link.S(2));
    }

    [Fact]
    public async Task An_old_duplicate_without_the_ack_flag_is_only_answered()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h, sack: false);
        var old = link.RcvNxt;
        link.Send(TcpFlags.Ack | TcpFlags.Psh, old, link.S(0), new byte[100]);
        link.RcvNxt += 100;
        h.Advance(TcpConstants.DelayedAck);
        link.ExpectAck(link.S(0));
        await WriteSegmentsAsync(link, Mss);
        link.ExpectData(link.S(0));

        // Without the ACK flag there is no ACK field to take: the answer is a plain ACK, SND.UNA stays.
        link.Send(TcpFlags.Psh, old, link.S(1), new byte[100]);
        link.ExpectAck(link.S(1));
        h.Advance(Rto - Tick);
        h.AssertNothingSent();
        h.Advance(Tick);
        link.ExpectData(link.S(0)); // still unacknowledged: the timer retransmits it
        Assert.Equal(1, link.Connection.Counters.Timeouts);
    }

    [Fact]
    public async Task A_data_bearing_window_probe_at_a_closed_window_is_answered_and_its_ack_field_taken()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h); // no window scaling: a 64 KiB receive buffer that cannot grow
        await WriteSegmentsAsync(link, Mss);
        link.ExpectData(link.S(0));

        // The peer fills the buffer; the application reads nothing.
        int filled = 0;
        while (filled < 65536)
        {
            int length = Math.Min(Mss, 65536 - filled);
            link.Send(TcpFlags.Ack, link.RcvNxt, link.S(0), new byte[length]);
            link.RcvNxt += (uint)length;
            filled += length;
        }

        h.Advance(TcpConstants.DelayedAck);
        var closed = h.TakeAll().Last();
        Assert.Equal(link.RcvNxt, closed.Ack);
        Assert.Equal(0, closed.Window);

        // A BSD/Windows-style probe: one new byte at RCV.NXT. Unacceptable (RFC 9293 3.10.7.4:
        // answered with an ACK, still showing the closed window); its ACK field counts.
        link.Send(TcpFlags.Ack | TcpFlags.Psh, link.RcvNxt, link.S(1), new byte[1]);
        var answer = link.ExpectAck(link.S(1));
        Assert.Equal(0, answer.Window);
        h.AssertNothingSent();
        Assert.Equal(65536, link.Connection.Counters.BytesReceived);
        h.Advance(TimeSpan.FromSeconds(10));
        h.AssertNothingSent(); // S0 was acknowledged by the probe: no retransmission
    }

    // ================================================================== (c) SACK-guided repair after a timeout

    /// <summary>
    /// Six segments; the peer SACKs S1 and S3 (two duplicate ACKs, not enough for recovery); the
    /// tail loss probe (S5 again) is lost too; then <paramref name="timeouts"/> consecutive
    /// timeouts; then the peer acknowledges S0–S1 and SACKs S3.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task A_timeout_repairs_only_the_holes_until_repeated_timeouts_make_it_go_back_n(int timeouts)
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        await WriteSegmentsAsync(link, 6 * Mss);
        ExpectSegments(link, 0, 6);

        h.Advance(Rtt);
        link.Ack(link.S(0), link.Sacked(1, 2));
        link.Ack(link.S(0), link.Sacked(1, 2), link.Sacked(3, 4));
        h.AssertNothingSent();
        Assert.Equal(0, link.Connection.Counters.FastRetransmits);

        // The tail loss probe at 2·SRTT after the burst: the last segment again.
        h.Advance(2 * Rtt - Rtt);
        link.ExpectData(link.S(5));
        h.AssertNothingSent();

        var rto = Rto;
        for (int timeout = 1; timeout <= timeouts; timeout++)
        {
            h.Advance(rto - Tick);
            h.AssertNothingSent();
            h.Advance(Tick);
            link.ExpectData(link.S(0)); // the first hole (or, going back N, SND.UNA): one segment, the loss window
            h.AssertNothingSent();
            rto *= 2;
            Assert.Equal(rto, link.Connection.RetransmissionTimeout);
            Assert.Equal(Mss, link.Connection.CongestionWindow);
        }

        // S0 arrives: the peer acknowledges S0–S1 and still SACKs S3. Slow start gives three segments.
        h.Advance(50);
        link.Ack(link.S(2), link.Sacked(3, 4));
        Assert.Equal(3 * Mss, link.Connection.CongestionWindow);
        if (timeouts <= TcpConstants.TimeoutsBeforeForgettingSacks)
        {
            // Repair: the holes in order, skipping the SACKed S3.
            link.ExpectData(link.S(2));
            link.ExpectData(link.S(4));
            link.ExpectData(link.S(5));
        }
        else
        {
            // The scoreboard was distrusted: go back N from SND.UNA, S3 included.
            link.ExpectData(link.S(2));
            link.ExpectData(link.S(3));
            link.ExpectData(link.S(4));
        }

        h.AssertNothingSent();
        Assert.Equal(new TcpCounters(Retransmissions: 1 + timeouts + 3, FastRetransmits: 0, Timeouts: timeouts, TailLossProbes: 1, LostRetransmissions: 0), link.Counters);

        // Everything acknowledged: nothing more is sent, the timers are off.
        link.Ack(link.S(6));
        h.Advance(TimeSpan.FromMinutes(5));
        h.AssertNothingSent();
        Assert.Equal(timeouts, link.Connection.Counters.Timeouts);
    }

    [Fact]
    public async Task Timeout_repair_retransmits_under_the_growing_slow_start_window_and_ends_at_the_recovery_point()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        await WriteSegmentsAsync(link, 10 * Mss);
        ExpectSegments(link, 0, 10);

        // Nothing comes back before the timeout (the tail loss probe is lost too).
        h.Advance(2 * Rtt);
        var probe = h.Next(); // the tail loss probe (S9 again), lost
        Assert.Equal(link.S(9), probe.Seq);
        h.Advance(Rto);
        link.ExpectData(link.S(0));
        h.AssertNothingSent();

        // Holes S0 (retransmitted), S2, S4, S6–S9 (the ACK of S0 takes the window to three segments).
        h.Advance(50);
        link.Ack(link.S(2), link.Sacked(3, 4), link.Sacked(5, 6));
        link.ExpectData(link.S(2));
        link.ExpectData(link.S(4));
        link.ExpectData(link.S(6));
        h.AssertNothingSent();

        // S2 arrives: 3 → 5 segments; two were still out, so three more holes go.
        link.Ack(link.S(4), link.Sacked(5, 6));
        link.ExpectData(link.S(7));
        link.ExpectData(link.S(8));
        link.ExpectData(link.S(9));
        h.AssertNothingSent();

        // The ACK past the recovery point ends the repair; new data then flows in slow start.
        link.Ack(link.S(10));
        h.AssertNothingSent();
        await WriteSegmentsAsync(link, Mss);
        link.ExpectData(link.S(10));
        Assert.Equal(new TcpCounters(Retransmissions: 1 + 1 + 6, FastRetransmits: 0, Timeouts: 1, TailLossProbes: 1, LostRetransmissions: 0), link.Counters);
    }

    [Fact]
    public async Task A_lost_fin_rides_again_with_the_last_data_in_the_probe_and_in_the_timeout_repair()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        await WriteSegmentsAsync(link, 1500);
        link.ExpectData(link.S(0)); // Nagle holds the last 500 bytes while S0 is out
        h.AssertNothingSent();
        link.Connection.ShutdownSend();
        var tail = link.ExpectData(link.S(1), 500);
        Assert.True(tail.Has(TcpFlags.Fin));
        Assert.Equal(TcpState.FinWait1, link.Connection.State);

        // S0 arrives, the tail with the FIN does not. A second 100 ms sample: RTO 250 ms;
        // one segment out, so the probe waits 2·SRTT + the delayed ACK = 240 ms.
        h.Advance(Rtt);
        link.Ack(link.S(1));
        var rto = TimeSpan.FromMilliseconds(250);
        Assert.Equal(rto, link.Connection.RetransmissionTimeout);
        h.Advance((2 * Rtt) + TcpConstants.DelayedAck - Tick);
        h.AssertNothingSent();
        h.Advance(Tick);
        Assert.True(link.ExpectData(link.S(1), 500).Has(TcpFlags.Fin));
        Assert.Equal(1, link.Connection.Counters.TailLossProbes);

        h.Advance(rto);
        Assert.True(link.ExpectData(link.S(1), 500).Has(TcpFlags.Fin));
        h.AssertNothingSent();
        Assert.Equal(1, link.Connection.Counters.Timeouts);

        link.Ack(link.S(1) + 501);
        Assert.Equal(TcpState.FinWait2, link.Connection.State);
        h.Advance(TimeSpan.FromMinutes(5));
        h.AssertNothingSent();
    }

    // ================================================================== (d) lost retransmissions

    [Fact]
    public async Task A_lost_fast_retransmission_is_sent_again_once_three_segments_sent_after_it_are_sacked()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        await WriteSegmentsAsync(link, 20 * Mss); // 10 go now (initial window), 10 wait
        ExpectSegments(link, 0, 10);

        // S0 is lost: three duplicate ACKs SACKing S1–S3 start fast recovery (CUBIC: cwnd 7 segments).
        h.Advance(Rtt);
        link.Ack(link.S(0), link.Sacked(1, 2));
        link.Ack(link.S(0), link.Sacked(1, 3));
        h.AssertNothingSent();
        link.Ack(link.S(0), link.Sacked(1, 4));
        link.ExpectData(link.S(0));
        h.AssertNothingSent(); // pipe: S0 retransmitted + S4–S9 = 7 segments
        Assert.Equal(7 * Mss, link.Connection.CongestionWindow);

        // S4–S9 arrive, the retransmission of S0 does not: only it is in the pipe, six new segments go.
        link.Ack(link.S(0), link.Sacked(1, 10));
        ExpectSegments(link, 10, 16);
        h.AssertNothingSent();

        // Three of the segments first sent after the retransmission are SACKed: it was lost too.
        link.Ack(link.S(0), link.Sacked(1, 13));
        link.ExpectData(link.S(0));
        Assert.Equal(1, link.Connection.Counters.LostRetransmissions);
        ExpectSegments(link, 16, 19); // pipe: S0 + S13–S15 = 4 of 7
        h.AssertNothingSent();

        // Its second retransmission arrives: recovery ends without a timeout.
        link.Ack(link.S(19));
        link.ExpectData(link.S(19));
        link.Ack(link.S(20));
        h.Advance(TimeSpan.FromMinutes(5));
        h.AssertNothingSent();
        Assert.Equal(new TcpCounters(Retransmissions: 2, FastRetransmits: 1, Timeouts: 0, TailLossProbes: 0, LostRetransmissions: 1), link.Counters);
    }

    [Fact]
    public async Task A_retransmission_is_not_declared_lost_while_fewer_than_three_later_segments_are_sacked()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        await WriteSegmentsAsync(link, 20 * Mss);
        ExpectSegments(link, 0, 10);
        h.Advance(Rtt);
        link.Ack(link.S(0), link.Sacked(1, 2));
        link.Ack(link.S(0), link.Sacked(1, 3));
        link.Ack(link.S(0), link.Sacked(1, 4));
        link.ExpectData(link.S(0));
        link.Ack(link.S(0), link.Sacked(1, 10));
        ExpectSegments(link, 10, 16);

        // Two segments sent after the retransmission are SACKed: reordering still explains it.
        link.Ack(link.S(0), link.Sacked(1, 12));
        ExpectSegments(link, 16, 18); // new data only, S0 not again
        h.AssertNothingSent();
        Assert.Equal(0, link.Connection.Counters.LostRetransmissions);
    }

    // ================================================================== (e) early retransmit

    [Fact]
    public async Task With_three_segments_out_two_duplicate_acks_sacking_all_but_one_segment_retransmit_it()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        await WriteSegmentsAsync(link, 3 * Mss);
        ExpectSegments(link, 0, 3);

        h.Advance(Rtt);
        link.Ack(link.S(0), link.Sacked(1, 2)); // two segments' worth unSACKed: not yet
        h.AssertNothingSent();
        link.Ack(link.S(0), link.Sacked(1, 3)); // all but one segment SACKed: RFC 5827
        link.ExpectData(link.S(0));
        h.AssertNothingSent();
        Assert.Equal(new TcpCounters(Retransmissions: 1, FastRetransmits: 1, Timeouts: 0, TailLossProbes: 0, LostRetransmissions: 0), link.Counters);
        Assert.Equal(2, link.Connection.Counters.DuplicateAcks);

        link.Ack(link.S(3));
        h.Advance(TimeSpan.FromMinutes(5));
        h.AssertNothingSent();
    }

    [Fact]
    public async Task With_two_segments_out_one_duplicate_ack_sacking_the_second_retransmits_the_first()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        await WriteSegmentsAsync(link, 2 * Mss);
        ExpectSegments(link, 0, 2);

        h.Advance(Rtt);
        link.Ack(link.S(0), link.Sacked(1, 2));
        link.ExpectData(link.S(0));
        Assert.Equal(1, link.Connection.Counters.FastRetransmits);
    }

    [Fact]
    public async Task With_four_segments_out_the_same_duplicate_acks_retransmit_nothing()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        await WriteSegmentsAsync(link, 4 * Mss);
        ExpectSegments(link, 0, 4);

        h.Advance(Rtt);
        link.Ack(link.S(0), link.Sacked(1, 2));
        link.Ack(link.S(0), link.Sacked(1, 3)); // two duplicate ACKs, two segments SACKed: neither DupThresh nor RFC 5827
        h.AssertNothingSent();
        Assert.Equal(0, link.Connection.Counters.FastRetransmits);
    }

    // ================================================================== (f) tail loss probe

    [Fact]
    public async Task Tail_loss_probe_after_two_srtt_sends_the_last_segment_again_and_its_sack_repairs_the_tail()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        await WriteSegmentsAsync(link, 2 * Mss);
        ExpectSegments(link, 0, 2);

        h.Advance(2 * Rtt - Tick);
        h.AssertNothingSent();
        h.Advance(Tick);
        link.ExpectData(link.S(1)); // no new data to send: the last segment again
        h.AssertNothingSent();
        Assert.Equal(new TcpCounters(Retransmissions: 1, FastRetransmits: 0, Timeouts: 0, TailLossProbes: 1, LostRetransmissions: 0), link.Counters);

        // The probe's SACK reveals the lost S0: early retransmit repairs it without a timeout.
        h.Advance(Rtt);
        link.Ack(link.S(0), link.Sacked(1, 2));
        link.ExpectData(link.S(0));
        link.Ack(link.S(2));
        h.Advance(TimeSpan.FromMinutes(5));
        h.AssertNothingSent();
        Assert.Equal(new TcpCounters(Retransmissions: 2, FastRetransmits: 1, Timeouts: 0, TailLossProbes: 1, LostRetransmissions: 0), link.Counters);
    }

    [Fact]
    public async Task Tail_loss_probe_with_one_segment_out_waits_for_the_peers_delayed_ack_too()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        await WriteSegmentsAsync(link, 500);
        link.ExpectData(link.S(0), 500);

        var pto = (2 * Rtt) + TcpConstants.DelayedAck;
        Assert.True(pto < Rto);
        h.Advance(pto - Tick);
        h.AssertNothingSent();
        h.Advance(Tick);
        link.ExpectData(link.S(0), 500);
        Assert.Equal(1, link.Connection.Counters.TailLossProbes);

        // Only one probe: then the retransmission timeout, restarted at the probe.
        h.Advance(Rto - Tick);
        h.AssertNothingSent();
        h.Advance(Tick);
        link.ExpectData(link.S(0), 500);
        Assert.Equal(new TcpCounters(Retransmissions: 2, FastRetransmits: 0, Timeouts: 1, TailLossProbes: 1, LostRetransmissions: 0), link.Counters);
    }

    [Fact]
    public async Task Tail_loss_probe_sends_new_data_when_the_window_allows()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        await WriteSegmentsAsync(link, 12 * Mss); // the congestion window holds back the last two
        ExpectSegments(link, 0, 10);
        h.AssertNothingSent();

        h.Advance(2 * Rtt);
        link.ExpectData(link.S(10)); // new data, one segment beyond the window
        h.AssertNothingSent();
        Assert.Equal(new TcpCounters(Retransmissions: 0, FastRetransmits: 0, Timeouts: 0, TailLossProbes: 1, LostRetransmissions: 0), link.Counters);

        // No second probe: the retransmission timer (restarted by the probe) comes next.
        h.Advance(Rto - Tick);
        h.AssertNothingSent();
        h.Advance(Tick);
        link.ExpectData(link.S(0));
        Assert.Equal(1, link.Connection.Counters.Timeouts);
        Assert.Equal(1, link.Connection.Counters.TailLossProbes);
    }

    [Fact]
    public async Task Tail_loss_probe_timeout_is_at_least_10_ms()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h, rtt: TimeSpan.FromMilliseconds(2));
        Assert.Equal(TcpConstants.MinRto, link.Connection.RetransmissionTimeout);
        await WriteSegmentsAsync(link, 2 * Mss);
        ExpectSegments(link, 0, 2);

        h.Advance(TcpConstants.MinProbeTimeout - Tick); // 2·SRTT = 4 ms is below the floor
        h.AssertNothingSent();
        h.Advance(Tick);
        link.ExpectData(link.S(1));
        Assert.Equal(1, link.Connection.Counters.TailLossProbes);
    }

    [Fact]
    public async Task No_tail_loss_probe_when_it_would_not_come_before_the_rto()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);

        // Three more 100 ms samples shrink RTTVAR until the RTO is its 200 ms floor = 2·SRTT.
        for (int i = 0; i < 3; i++)
        {
            await WriteSegmentsAsync(link, 100);
            var sent = link.ExpectData(link.S(0) + (uint)(i * 100), 100);
            h.Advance(Rtt);
            link.Ack(sent.Seq + 100);
        }

        Assert.Equal(TcpConstants.MinRto, link.Connection.RetransmissionTimeout);
        var next = link.S(0) + 300;
        await WriteSegmentsAsync(link, 2 * Mss);
        link.ExpectData(next);
        link.ExpectData(next + Mss);

        h.Advance(TcpConstants.MinRto - Tick);
        h.AssertNothingSent();
        h.Advance(Tick);
        link.ExpectData(next); // the RTO, not a probe
        Assert.Equal(new TcpCounters(Retransmissions: 1, FastRetransmits: 0, Timeouts: 1, TailLossProbes: 0, LostRetransmissions: 0), link.Counters);
    }

    [Fact]
    public async Task No_tail_loss_probe_without_sack()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h, sack: false);
        await WriteSegmentsAsync(link, 2 * Mss);
        ExpectSegments(link, 0, 2);
        h.Advance(Rto - Tick);
        h.AssertNothingSent();
        h.Advance(Tick);
        link.ExpectData(link.S(0));
        Assert.Equal(0, link.Connection.Counters.TailLossProbes);
    }

    // ================================================================== (g) RTT from timestamp echoes

    [Theory]
    [InlineData(false, 293_750)] // echo of the retransmission: sample 50 ms, SRTT 93.75 ms, RTTVAR 50 ms
    [InlineData(true, 531_250)] // echo of the first transmission: sample 350 ms, SRTT 131.25 ms, RTTVAR 100 ms
    public async Task An_ack_of_a_retransmission_gives_an_rtt_sample_from_the_timestamp_it_echoes(bool echoFirstTransmission, int expectedRtoMicroseconds)
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h, sack: false, timestamps: true);
        await WriteSegmentsAsync(link, 100);
        var first = link.ExpectData(link.S(0), 100);
        h.Advance(Rto);
        var again = link.ExpectData(link.S(0), 100);
        Assert.Equal(first.Options.TimestampValue + 300, again.Options.TimestampValue);
        Assert.Equal(2 * Rto, link.Connection.RetransmissionTimeout);

        // A duplicate ACK echoing the retransmission measures nothing: it does not advance SND.UNA.
        h.Advance(50);
        link.Echo = again.Options.TimestampValue;
        link.Ack(link.S(0));
        Assert.Equal(2 * Rto, link.Connection.RetransmissionTimeout);

        // The ACK that advances SND.UNA does, Karn's rule notwithstanding (RFC 7323 4.1): the echo says which transmission it answers.
        link.Echo = echoFirstTransmission ? first.Options.TimestampValue : again.Options.TimestampValue;
        link.Ack(link.S(0) + 100);
        Assert.Equal(TimeSpan.FromMicroseconds(expectedRtoMicroseconds), link.Connection.RetransmissionTimeout);
        h.AssertNothingSent();
    }

    // ================================================================== (h) the owed SACK after full data segments

    [Fact]
    public async Task Full_data_segments_have_no_room_for_sack_blocks_so_a_pure_ack_with_them_follows()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        await WriteSegmentsAsync(link, 12 * Mss);
        ExpectSegments(link, 0, 10);

        // Out-of-order data from the peer (a hole of 100 bytes) acknowledging two segments.
        h.Advance(Rtt);
        var hole = link.RcvNxt;
        link.Send(TcpFlags.Ack | TcpFlags.Psh, hole + 100, link.S(2), new byte[100]);
        var s10 = link.ExpectData(link.S(10));
        var s11 = link.ExpectData(link.S(11));
        Assert.Equal(0, s10.Options.SackBlockCount);
        Assert.Equal(0, s11.Options.SackBlockCount);
        var ack = link.ExpectAck(link.S(12));
        Assert.Equal(1, ack.Options.SackBlockCount);
        Assert.Equal(new SackBlock(hole + 100, hole + 200), ack.Options.GetSackBlock(0));
        h.AssertNothingSent();
        h.Advance(TcpConstants.DelayedAck);
        h.AssertNothingSent(); // and no delayed ACK left behind
    }

    [Fact]
    public async Task A_data_segment_with_room_for_the_sack_blocks_carries_them_and_the_owed_ack()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h, options: new MeshTcpOptions { NoDelay = true });
        await WriteSegmentsAsync(link, (10 * Mss) + 500);
        ExpectSegments(link, 0, 10);

        h.Advance(Rtt);
        var hole = link.RcvNxt;
        link.Send(TcpFlags.Ack | TcpFlags.Psh, hole + 100, link.S(2), new byte[100]);
        var data = link.ExpectData(link.S(10), 500);
        Assert.Equal(1, data.Options.SackBlockCount);
        Assert.Equal(new SackBlock(hole + 100, hole + 200), data.Options.GetSackBlock(0));
        h.AssertNothingSent();
        h.Advance(TcpConstants.DelayedAck);
        h.AssertNothingSent();
    }

    // ================================================================== (i) one ACK per received batch

    [Fact]
    public async Task Inside_a_received_batch_the_every_second_segment_ack_waits_for_the_end_of_the_batch()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        var start = link.RcvNxt;
        TransmitBatch.Begin();
        try
        {
            for (int i = 0; i < 6; i++)
            {
                link.Send(TcpFlags.Ack, link.RcvNxt, link.S(0), new byte[Mss]);
                link.RcvNxt += Mss;
            }

            h.AssertNothingSent();
        }
        finally
        {
            TransmitBatch.End();
        }

        var ack = link.ExpectAck(link.S(0));
        Assert.Equal(start + (6 * Mss), ack.Ack);
        h.Advance(TimeSpan.FromSeconds(1));
        h.AssertNothingSent(); // no delayed ACK left behind

        // Outside a batch every second segment is acknowledged at once again.
        link.Send(TcpFlags.Ack, link.RcvNxt, link.S(0), new byte[Mss]);
        link.RcvNxt += Mss;
        h.AssertNothingSent();
        link.Send(TcpFlags.Ack, link.RcvNxt, link.S(0), new byte[Mss]);
        link.RcvNxt += Mss;
        link.ExpectAck(link.S(0));
    }

    [Fact]
    public async Task One_ack_covers_at_most_the_stretch_limit_of_a_received_batch()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        var start = link.RcvNxt;
        int segments = TcpConstants.MaxAckStretchSegments + 4;
        var acks = new List<Segment>();
        TransmitBatch.Begin();
        try
        {
            for (int i = 1; i <= segments; i++)
            {
                link.Send(TcpFlags.Ack, link.RcvNxt, link.S(0), new byte[Mss]);
                link.RcvNxt += Mss;
                var sent = h.TakeAll();
                if (i == TcpConstants.MaxAckStretchSegments)
                {
                    var only = Assert.Single(sent);
                    Assert.Equal(TcpFlags.Ack, only.Flags);
                    Assert.Equal(start + (uint)(i * Mss), only.Ack);
                }
                else
                {
                    Assert.Empty(sent);
                }
            }
        }
        finally
        {
            TransmitBatch.End();
        }

        var last = link.ExpectAck(link.S(0));
        Assert.Equal(start + (uint)(segments * Mss), last.Ack);
        h.Advance(TimeSpan.FromSeconds(1));
        h.AssertNothingSent();
    }

    [Fact]
    public async Task A_data_segment_inside_the_batch_carries_the_deferred_ack_and_none_follows()
    {
        var h = new TcpHarness();
        var link = await OpenAsync(h);
        TransmitBatch.Begin();
        try
        {
            for (int i = 0; i < 4; i++)
            {
                link.Send(TcpFlags.Ack, link.RcvNxt, link.S(0), new byte[Mss]);
                link.RcvNxt += Mss;
            }

            h.AssertNothingSent();
            await WriteSegmentsAsync(link, 100); // completes synchronously on this thread: the scope is still open
            link.ExpectData(link.S(0), 100);
        }
        finally
        {
            TransmitBatch.End();
        }

        h.AssertNothingSent();
        Assert.Equal(TcpState.Established, link.Connection.State);
    }
}
