using System.Net.Sockets;
using TunnelMesh.Net.Stack.Tcp;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Stack.Tcp;

/// <summary>
/// The TCP state machine of one stack, driven by segments a test crafts as the peer, under a manual
/// clock: every transition of RFC 9293 figure 5, RST in each state (RFC 5961), SYN and data
/// retransmission with backoff (RFC 6298), zero-window probes, TIME_WAIT, RST for closed ports,
/// PAWS (RFC 7323) and the delayed ACK. Numbers the RFCs fix are asserted exactly.
/// </summary>
public sealed class TcpStateMachineTests
{
    private const ushort ServicePort = 80;
    private const ushort PeerEphemeralPort = 40000;

    // The peer's sequence numbers start just below the wrap, so every test crosses it.
    private const uint PeerIss = 0xFFFF_FFF0;
    private const ushort PeerMss = 1000;

    // What the stack under test offers in its SYN: MSS = MTU - 40; window shift 7 covers the 4 MiB default buffer.
    private const int OurMss = TcpHarness.Mtu - 40;
    private const int OurWindowShift = 7;

    private static readonly TimeSpan Rtt = TimeSpan.FromMilliseconds(100);

    // RFC 6298 2.2 after one sample R = 100 ms: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4·RTTVAR.
    private static readonly TimeSpan RtoAfterHandshake = TimeSpan.FromMilliseconds(300);

    /// <summary>One connection between the stack and the scripted peer, with both sides' next sequence numbers.</summary>
    private sealed class Link
    {
        public required TcpHarness H { get; init; }

        public required TcpConnection Connection { get; init; }

        /// <summary>The stack's port.</summary>
        public required ushort LocalPort { get; init; }

        /// <summary>The scripted peer's port.</summary>
        public required ushort RemotePort { get; init; }

        /// <summary>The stack's initial sequence number.</summary>
        public required uint Iss { get; init; }

        /// <summary>The stack's next sequence number: what the peer acknowledges.</summary>
        public uint SndNxt { get; set; }

        /// <summary>The peer's next sequence number: what the stack acknowledges.</summary>
        public uint RcvNxt { get; set; }

        /// <summary>Options the peer puts on every segment after the handshake (timestamps).</summary>
        public TcpOptions PeerOptions { get; set; } = TcpOptions.None;

        public TcpState State => Connection.State;

        public Segment Seg(TcpFlags flags, uint seq, uint ack, ushort window = 65535, byte[]? data = null) =>
            new(RemotePort, LocalPort, seq, ack, flags, window) { Payload = data ?? [], Options = PeerOptions };

        public void Send(TcpFlags flags, uint seq, uint ack, ushort window = 65535, byte[]? data = null) => H.Deliver(Seg(flags, seq, ack, window, data));

        /// <summary>A pure ACK of everything the stack sent.</summary>
        public void SendAck(ushort window = 65535) => Send(TcpFlags.Ack, RcvNxt, SndNxt, window);

        public void SendData(byte[] data, ushort window = 65535)
        {
            Send(TcpFlags.Ack | TcpFlags.Psh, RcvNxt, SndNxt, window, data);
            RcvNxt += (uint)data.Length;
        }

        /// <summary>FIN (with ACK of what the peer has seen, which may be less than <see cref="SndNxt"/>).</summary>
        public void SendFin(uint? ack = null)
        {
            Send(TcpFlags.Fin | TcpFlags.Ack, RcvNxt, ack ?? SndNxt);
            RcvNxt += 1;
        }

        /// <summary>Takes the next segment and checks it is a pure ACK at SND.NXT acknowledging RCV.NXT.</summary>
        public Segment ExpectAck()
        {
            var ack = H.Next();
            Assert.Equal(TcpFlags.Ack, ack.Flags);
            Assert.Equal(SndNxt, ack.Seq);
            Assert.Equal(RcvNxt, ack.Ack);
            Assert.Empty(ack.Payload);
            return ack;
        }

        /// <summary>Takes the next segment and checks it is our FIN at SND.NXT (then counts it).</summary>
        public Segment ExpectFin()
        {
            var fin = H.Next();
            Assert.Equal(TcpFlags.Fin | TcpFlags.Ack, fin.Flags);
            Assert.Equal(SndNxt, fin.Seq);
            Assert.Equal(RcvNxt, fin.Ack);
            Assert.Empty(fin.Payload);
            SndNxt += 1;
            return fin;
        }
    }

    private static TcpOptions PeerSynOptions(bool sack = false, bool timestamps = false, uint tsVal = 0, uint tsEcr = 0, int windowScale = -1)
    {
        var options = TcpOptions.None;
        options.MaxSegmentSize = PeerMss;
        options.SackPermitted = sack;
        options.WindowScale = windowScale;
        if (timestamps)
        {
            options.HasTimestamps = true;
            options.TimestampValue = tsVal;
            options.TimestampEcho = tsEcr;
        }

        return options;
    }

    private static TcpOptions Timestamps(uint tsVal, uint tsEcr = 0)
    {
        var options = TcpOptions.None;
        options.HasTimestamps = true;
        options.TimestampValue = tsVal;
        options.TimestampEcho = tsEcr;
        return options;
    }

    /// <summary>Dials the peer: SYN, 100 ms, SYN-ACK from the peer, the stack's ACK. The RTO is then 300 ms.</summary>
    private static async Task<Link> OpenActiveAsync(TcpHarness h, MeshTcpOptions? options = null, TcpOptions? peerSyn = null, ushort peerWindow = 65535)
    {
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, options ?? MeshTcpOptions.Default, CancellationToken.None);
        var syn = h.Next();
        var link = new Link { H = h, Connection = h.Connection, LocalPort = syn.SourcePort, RemotePort = ServicePort, Iss = syn.Seq, SndNxt = syn.Seq + 1, RcvNxt = PeerIss + 1 };
        h.Advance(Rtt);
        h.Deliver(new Segment(ServicePort, link.LocalPort, PeerIss, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, peerWindow) { Options = peerSyn ?? PeerSynOptions() });
        Assert.Same(link.Connection, await connect);
        Assert.Equal(TcpState.Established, link.State);
        link.ExpectAck();
        h.AssertNothingSent();
        return link;
    }

    /// <summary>The peer dials a listener on port 80: SYN, SYN-ACK, 100 ms, ACK.</summary>
    private static async Task<Link> OpenPassiveAsync(TcpHarness h, TcpListenerCore? listener = null)
    {
        listener ??= h.Stack.Tcp.Listen(ServicePort, new MeshTcpListenerOptions());
        var link = await SynReceivedAsync(h, listener);
        h.Advance(Rtt);
        link.SendAck();
        Assert.Equal(TcpState.Established, link.State);
        Assert.Same(link.Connection, await listener.AcceptAsync(CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        h.AssertNothingSent();
        return link;
    }

    private static Task<Link> SynReceivedAsync(TcpHarness h, TcpListenerCore listener)
    {
        _ = listener;
        h.Deliver(new Segment(PeerEphemeralPort, ServicePort, PeerIss, 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() });
        var synAck = h.Next();
        var link = new Link { H = h, Connection = h.Connection, LocalPort = ServicePort, RemotePort = PeerEphemeralPort, Iss = synAck.Seq, SndNxt = synAck.Seq + 1, RcvNxt = PeerIss + 1 };
        Assert.Equal(TcpState.SynReceived, link.State);
        return Task.FromResult(link);
    }

    /// <summary>Brings a fresh connection into <paramref name="state"/> by a standard path.</summary>
    private static async Task<Link> OpenInStateAsync(TcpHarness h, TcpState state)
    {
        if (state == TcpState.SynReceived)
        {
            return await SynReceivedAsync(h, h.Stack.Tcp.Listen(ServicePort, new MeshTcpListenerOptions()));
        }

        var link = await OpenActiveAsync(h);
        switch (state)
        {
            case TcpState.Established:
                break;
            case TcpState.FinWait1:
                link.Connection.ShutdownSend();
                link.ExpectFin();
                break;
            case TcpState.FinWait2:
                link.Connection.ShutdownSend();
                link.ExpectFin();
                link.SendAck();
                break;
            case TcpState.CloseWait:
                link.SendFin();
                link.ExpectAck();
                break;
            case TcpState.Closing:
                link.Connection.ShutdownSend();
                link.ExpectFin();
                link.SendFin(ack: link.SndNxt - 1); // crosses our FIN: does not acknowledge it
                link.ExpectAck();
                break;
            case TcpState.LastAck:
                link.SendFin();
                link.ExpectAck();
                link.Connection.ShutdownSend();
                link.ExpectFin();
                break;
            case TcpState.TimeWait:
                link.Connection.ShutdownSend();
                link.ExpectFin();
                link.SendAck();
                link.SendFin();
                link.ExpectAck();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(state), state, null);
        }

        Assert.Equal(state, link.State);
        h.AssertNothingSent();
        return link;
    }

    // ================================================================== opening

    [Fact]
    public async Task Active_open_syn_sent_to_established_with_the_options_offered_and_negotiated()
    {
        var h = new TcpHarness();
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, MeshTcpOptions.Default, CancellationToken.None);
        var syn = h.Next();
        var connection = h.Connection;
        Assert.Equal(TcpState.SynSent, connection.State);
        Assert.Equal(TcpFlags.Syn, syn.Flags);
        Assert.Equal(0u, syn.Ack);
        Assert.Equal(ServicePort, syn.DestinationPort);
        Assert.InRange(syn.SourcePort, 49152, 65535);
        Assert.Empty(syn.Payload);
        Assert.Equal(65535, syn.Window); // the window in a SYN is never scaled (RFC 7323 2.2)
        Assert.Equal(OurMss, syn.Options.MaxSegmentSize);
        Assert.Equal(OurWindowShift, syn.Options.WindowScale);
        Assert.True(syn.Options.SackPermitted);
        Assert.True(syn.Options.HasTimestamps);
        Assert.Equal(0u, syn.Options.TimestampEcho);
        Assert.False(connect.IsCompleted);

        h.Advance(Rtt);
        var peerSyn = PeerSynOptions(sack: true, timestamps: true, tsVal: 777, tsEcr: syn.Options.TimestampValue, windowScale: 2);
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, 1000) { Options = peerSyn });
        Assert.Same(connection, await connect);
        Assert.Equal(TcpState.Established, connection.State);

        var ack = h.Next();
        Assert.Equal(TcpFlags.Ack, ack.Flags);
        Assert.Equal(syn.Seq + 1, ack.Seq);
        Assert.Equal(PeerIss + 1, ack.Ack);
        Assert.True(ack.Options.HasTimestamps);
        Assert.Equal(777u, ack.Options.TimestampEcho);
        Assert.Equal(syn.Options.TimestampValue + 100, ack.Options.TimestampValue); // a 1 ms timestamp clock
        h.AssertNothingSent();

        Assert.Equal((true, true, 2, OurWindowShift), connection.Negotiated);
        Assert.Equal(PeerMss - 12, connection.SegmentSize); // the timestamps option takes 12 bytes of each segment
        Assert.Equal(RtoAfterHandshake, connection.RetransmissionTimeout);
    }

    [Fact]
    public async Task Passive_open_listen_to_syn_received_to_established_and_accepted()
    {
        var h = new TcpHarness();
        var listener = h.Stack.Tcp.Listen(ServicePort, new MeshTcpListenerOptions());
        const uint peerIss = 1000;
        var peerSyn = PeerSynOptions(sack: true, timestamps: true, tsVal: 1234, windowScale: 3);
        h.Deliver(new Segment(PeerEphemeralPort, ServicePort, peerIss, 0, TcpFlags.Syn, 65535) { Options = peerSyn });
        var synAck = h.Next();
        var connection = h.Connection;
        Assert.Equal(TcpState.SynReceived, connection.State);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal(peerIss + 1, synAck.Ack);
        Assert.Equal(ServicePort, synAck.SourcePort);
        Assert.Equal(PeerEphemeralPort, synAck.DestinationPort);
        Assert.Equal(65535, synAck.Window);
        Assert.Equal(OurMss, synAck.Options.MaxSegmentSize);
        Assert.Equal(OurWindowShift, synAck.Options.WindowScale);
        Assert.True(synAck.Options.SackPermitted);
        Assert.True(synAck.Options.HasTimestamps);
        Assert.Equal(1234u, synAck.Options.TimestampEcho);

        var accept = listener.AcceptAsync(CancellationToken.None).AsTask();
        Assert.False(accept.IsCompleted); // not before the handshake completes
        h.Advance(Rtt);
        var ackOptions = Timestamps(1334, synAck.Options.TimestampValue);
        h.Deliver(new Segment(PeerEphemeralPort, ServicePort, peerIss + 1, synAck.Seq + 1, TcpFlags.Ack, 100) { Options = ackOptions });
        Assert.Equal(TcpState.Established, connection.State);
        Assert.Same(connection, await accept.WaitAsync(TimeSpan.FromSeconds(10)));
        h.AssertNothingSent();
        Assert.Equal((true, true, 3, OurWindowShift), connection.Negotiated);
        Assert.Equal(RtoAfterHandshake, connection.RetransmissionTimeout);

        // The handshake's ACK is the latest timestamp in sequence: the stack's next segment echoes it (RFC 7323 4.3).
        await connection.WriteAsync(new byte[10], CancellationToken.None);
        var data = h.Next();
        Assert.Equal(synAck.Seq + 1, data.Seq);
        Assert.Equal(10, data.Payload.Length);
        Assert.Equal(1334u, data.Options.TimestampEcho);
    }

    [Fact]
    public void Syn_ack_carries_no_window_scale_sack_or_timestamps_the_syn_did_not_offer()
    {
        // RFC 7323 2.2: a window scale option MAY be sent in a SYN-ACK only if one was received in the SYN.
        var h = new TcpHarness();
        h.Stack.Tcp.Listen(ServicePort, new MeshTcpListenerOptions());
        h.Deliver(new Segment(PeerEphemeralPort, ServicePort, PeerIss, 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() });
        var synAck = h.Next();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal(OurMss, synAck.Options.MaxSegmentSize);
        Assert.Equal(-1, synAck.Options.WindowScale);
        Assert.False(synAck.Options.SackPermitted);
        Assert.False(synAck.Options.HasTimestamps);
        Assert.Equal((false, false, 0, 0), h.Connection.Negotiated);
    }

    [Fact]
    public async Task Simultaneous_open_syn_sent_to_syn_received_to_established()
    {
        // RFC 9293 figure 8: both sides send a SYN; each answers the other's with a SYN-ACK.
        var h = new TcpHarness();
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, MeshTcpOptions.Default, CancellationToken.None);
        var syn = h.Next();
        var connection = h.Connection;
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss, 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() });
        Assert.Equal(TcpState.SynReceived, connection.State);
        var synAck = h.Next();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal(syn.Seq, synAck.Seq);
        Assert.Equal(PeerIss + 1, synAck.Ack);
        Assert.False(connect.IsCompleted);

        // The peer's SYN-ACK (line 6 of figure 8) acknowledges our SYN: ESTABLISHED, nothing more to send.
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, 65535) { Options = PeerSynOptions() });
        Assert.Equal(TcpState.Established, connection.State);
        Assert.Same(connection, await connect);
        h.AssertNothingSent();

        // And data flows: the stack takes the peer's bytes and sends its own from ISS + 1.
        var link = new Link { H = h, Connection = connection, LocalPort = syn.SourcePort, RemotePort = ServicePort, Iss = syn.Seq, SndNxt = syn.Seq + 1, RcvNxt = PeerIss + 1 };
        await connection.WriteAsync(new byte[5], CancellationToken.None);
        var data = h.Next();
        Assert.Equal(link.SndNxt, data.Seq);
        Assert.Equal(link.RcvNxt, data.Ack);
        Assert.Equal(5, data.Payload.Length);
    }

    [Fact]
    public async Task Simultaneous_open_completes_on_a_plain_ack_too()
    {
        var h = new TcpHarness();
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, MeshTcpOptions.Default, CancellationToken.None);
        var syn = h.Next();
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss, 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() });
        h.Next();
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss + 1, syn.Seq + 1, TcpFlags.Ack, 65535));
        Assert.Equal(TcpState.Established, h.Connection.State);
        await connect;
        h.AssertNothingSent();
    }

    [Fact]
    public void Retransmitted_syn_in_syn_received_gets_the_syn_ack_again()
    {
        var h = new TcpHarness();
        h.Stack.Tcp.Listen(ServicePort, new MeshTcpListenerOptions());
        var syn = new Segment(PeerEphemeralPort, ServicePort, PeerIss, 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() };
        h.Deliver(syn);
        var first = h.Next();
        h.Advance(500);
        h.Deliver(syn);
        var again = h.Next();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, again.Flags);
        Assert.Equal(first.Seq, again.Seq);
        Assert.Equal(first.Ack, again.Ack);
        Assert.Equal(first.Options.MaxSegmentSize, again.Options.MaxSegmentSize);
        Assert.Equal(1, h.ConnectionCount);
        Assert.Equal(TcpState.SynReceived, h.Connection.State);
    }

    [Fact]
    public void Unacceptable_ack_in_syn_received_is_answered_with_a_reset_from_its_ack_number()
    {
        var h = new TcpHarness();
        h.Stack.Tcp.Listen(ServicePort, new MeshTcpListenerOptions());
        h.Deliver(new Segment(PeerEphemeralPort, ServicePort, PeerIss, 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() });
        var synAck = h.Next();
        uint bogus = synAck.Seq + 1000;
        h.Deliver(new Segment(PeerEphemeralPort, ServicePort, PeerIss + 1, bogus, TcpFlags.Ack, 65535));
        var rst = h.Next();
        Assert.Equal(TcpFlags.Rst, rst.Flags); // RFC 9293 3.10.7.4: <SEQ=SEG.ACK><CTL=RST>
        Assert.Equal(bogus, rst.Seq);
        Assert.Equal(TcpState.SynReceived, h.Connection.State);
    }

    // ================================================================== closing

    [Fact]
    public async Task Active_close_fin_wait_1_fin_wait_2_time_wait_then_closed_after_2msl()
    {
        var h = new TcpHarness();
        var link = await OpenActiveAsync(h);
        link.Connection.ShutdownSend();
        Assert.Equal(TcpState.FinWait1, link.State);
        link.ExpectFin();

        link.SendAck();
        Assert.Equal(TcpState.FinWait2, link.State);
        h.AssertNothingSent();

        // FIN_WAIT_2 after a half-close has no timeout: the application may still read.
        h.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(TcpState.FinWait2, link.State);
        h.AssertNothingSent();

        link.SendFin();
        Assert.Equal(TcpState.TimeWait, link.State);
        link.ExpectAck();
        Assert.Equal(0, await link.Connection.ReadAsync(new byte[1], CancellationToken.None));

        h.Advance(TcpConstants.TimeWait - TimeSpan.FromTicks(1));
        Assert.Equal(TcpState.TimeWait, link.State);
        Assert.Equal(1, h.ConnectionCount);
        h.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(TcpState.Closed, link.State);
        Assert.Equal(SocketError.Success, link.Connection.Error);
        Assert.Equal(0, h.ConnectionCount);
        h.AssertNothingSent();
        Assert.Equal(TimeSpan.FromSeconds(60), TcpConstants.TimeWait); // 2·MSL as Linux counts it
    }

    [Fact]
    public async Task Fin_wait_1_goes_straight_to_time_wait_when_the_peer_fin_acknowledges_ours()
    {
        var h = new TcpHarness();
        var link = await OpenActiveAsync(h);
        link.Connection.ShutdownSend();
        link.ExpectFin();
        link.SendFin();
        Assert.Equal(TcpState.TimeWait, link.State);
        link.ExpectAck();
        h.AssertNothingSent();
    }

    [Fact]
    public async Task Fin_wait_2_times_out_once_the_application_has_closed()
    {
        var h = new TcpHarness();
        var link = await OpenActiveAsync(h);
        link.Connection.CloseFromApplication();
        Assert.Equal(TcpState.FinWait1, link.State);
        link.ExpectFin();
        link.SendAck();
        Assert.Equal(TcpState.FinWait2, link.State);
        h.Advance(TcpConstants.FinWait2Timeout - TimeSpan.FromTicks(1));
        Assert.Equal(TcpState.FinWait2, link.State);
        h.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(TcpState.Closed, link.State);
        Assert.Equal(0, h.ConnectionCount);
        h.AssertNothingSent();
    }

    [Fact]
    public async Task Simultaneous_close_fin_wait_1_closing_time_wait()
    {
        var h = new TcpHarness();
        var link = await OpenActiveAsync(h);
        link.Connection.ShutdownSend();
        link.ExpectFin();

        // The peer's FIN crosses ours: it acknowledges only up to our FIN.
        link.SendFin(ack: link.SndNxt - 1);
        Assert.Equal(TcpState.Closing, link.State);
        link.ExpectAck();

        link.SendAck();
        Assert.Equal(TcpState.TimeWait, link.State);
        h.AssertNothingSent();
        h.Advance(TcpConstants.TimeWait);
        Assert.Equal(TcpState.Closed, link.State);
        Assert.Equal(0, h.ConnectionCount);
    }

    [Fact]
    public async Task Passive_close_close_wait_last_ack_closed()
    {
        var h = new TcpHarness();
        var link = await OpenPassiveAsync(h);
        link.SendFin();
        Assert.Equal(TcpState.CloseWait, link.State);
        link.ExpectAck(); // a FIN is acknowledged at once
        Assert.Equal(0, await link.Connection.ReadAsync(new byte[1], CancellationToken.None));

        // CLOSE_WAIT may still send.
        await link.Connection.WriteAsync(new byte[3], CancellationToken.None);
        var data = h.Next();
        Assert.Equal(link.SndNxt, data.Seq);
        Assert.Equal(link.RcvNxt, data.Ack);
        link.SndNxt += 3;
        link.SendAck();

        link.Connection.ShutdownSend();
        Assert.Equal(TcpState.LastAck, link.State);
        link.ExpectFin();
        link.SendAck();
        Assert.Equal(TcpState.Closed, link.State);
        Assert.Equal(SocketError.Success, link.Connection.Error);
        Assert.Equal(0, h.ConnectionCount);
        h.AssertNothingSent();
    }

    [Fact]
    public async Task Time_wait_reacknowledges_a_retransmitted_fin_and_restarts_2msl()
    {
        var h = new TcpHarness();
        var link = await OpenInStateAsync(h, TcpState.TimeWait);
        h.Advance(TimeSpan.FromSeconds(30));

        // The peer did not get our last ACK and sends its FIN again.
        link.Send(TcpFlags.Fin | TcpFlags.Ack, link.RcvNxt - 1, link.SndNxt);
        link.ExpectAck();
        Assert.Equal(TcpState.TimeWait, link.State);

        h.Advance(TcpConstants.TimeWait - TimeSpan.FromTicks(1));
        Assert.Equal(TcpState.TimeWait, link.State);
        h.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(TcpState.Closed, link.State);
        Assert.Equal(0, h.ConnectionCount);

        // Afterwards the port is closed: a late FIN earns a RST from its ACK number.
        link.Send(TcpFlags.Fin | TcpFlags.Ack, link.RcvNxt - 1, link.SndNxt);
        var rst = h.Next();
        Assert.Equal(TcpFlags.Rst, rst.Flags);
        Assert.Equal(link.SndNxt, rst.Seq);
    }

    [Fact]
    public async Task Time_wait_acknowledges_an_old_duplicate_without_leaving_the_state()
    {
        var h = new TcpHarness();
        var link = await OpenInStateAsync(h, TcpState.TimeWait);
        link.Send(TcpFlags.Ack | TcpFlags.Psh, link.RcvNxt - 11, link.SndNxt, data: new byte[10]);
        link.ExpectAck();
        Assert.Equal(TcpState.TimeWait, link.State);
        h.AssertNothingSent();
    }

    // ================================================================== RST

    public static TheoryData<string> SynchronizedStates => new()
    {
        nameof(TcpState.SynReceived),
        nameof(TcpState.Established),
        nameof(TcpState.FinWait1),
        nameof(TcpState.FinWait2),
        nameof(TcpState.CloseWait),
        nameof(TcpState.Closing),
        nameof(TcpState.LastAck),
        nameof(TcpState.TimeWait),
    };

    [Theory]
    [MemberData(nameof(SynchronizedStates))]
    public async Task Rst_at_exactly_rcv_nxt_ends_the_connection(string stateName)
    {
        var state = Enum.Parse<TcpState>(stateName);
        var h = new TcpHarness();
        var link = await OpenInStateAsync(h, state);
        link.Send(TcpFlags.Rst, link.RcvNxt, 0, window: 0);
        Assert.Equal(TcpState.Closed, link.State);
        Assert.Equal(0, h.ConnectionCount);
        h.AssertNothingSent(); // a RST is never answered

        // RFC 9293 3.10.7.4: the user hears "connection reset" while the connection is open; once
        // both sides closed (CLOSING, LAST-ACK, TIME-WAIT) the RST simply ends it; a passive
        // SYN-RECEIVED goes back to LISTEN.
        var expected = state is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.CloseWait
            ? SocketError.ConnectionReset
            : SocketError.Success;
        Assert.Equal(expected, link.Connection.Error);
        Assert.Equal(1, link.Connection.Counters.ResetsReceived);

        if (state == TcpState.SynReceived)
        {
            // Still listening: the same peer can connect again.
            h.Deliver(new Segment(PeerEphemeralPort, ServicePort, unchecked(PeerIss + 5000), 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() });
            Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, h.Next().Flags);
        }
    }

    [Theory]
    [MemberData(nameof(SynchronizedStates))]
    public async Task Rst_inside_the_window_but_not_at_rcv_nxt_earns_a_challenge_ack(string stateName)
    {
        var state = Enum.Parse<TcpState>(stateName);
        var h = new TcpHarness();
        var link = await OpenInStateAsync(h, state);
        foreach (uint offset in new uint[] { 1, 1000, 65535 })
        {
            link.Send(TcpFlags.Rst, link.RcvNxt + offset, 0, window: 0);
            link.ExpectAck(); // RFC 5961 3.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            Assert.Equal(state, link.State);
        }

        // The peer, told where we are, resets exactly.
        link.Send(TcpFlags.Rst | TcpFlags.Ack, link.RcvNxt, link.SndNxt, window: 0);
        Assert.Equal(TcpState.Closed, link.State);
    }

    [Theory]
    [MemberData(nameof(SynchronizedStates))]
    public async Task Rst_outside_the_window_is_dropped_silently(string stateName)
    {
        var state = Enum.Parse<TcpState>(stateName);
        var h = new TcpHarness();
        var link = await OpenInStateAsync(h, state);
        foreach (uint seq in new[] { link.RcvNxt - 1, link.RcvNxt - 100_000, link.RcvNxt + 65536, link.RcvNxt + 0x4000_0000 })
        {
            link.Send(TcpFlags.Rst, seq, 0, window: 0);
            link.Send(TcpFlags.Rst | TcpFlags.Ack, seq, link.SndNxt, window: 0);
            h.AssertNothingSent();
            Assert.Equal(state, link.State);
        }
    }

    [Fact]
    public async Task Rst_in_syn_sent_counts_only_when_it_acknowledges_our_syn()
    {
        var h = new TcpHarness();
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, MeshTcpOptions.Default, CancellationToken.None);
        var syn = h.Next();
        var connection = h.Connection;

        // No ACK: dropped (RFC 9293 3.10.7.3).
        h.Deliver(new Segment(ServicePort, syn.SourcePort, 12345, 0, TcpFlags.Rst, 0));
        // An ACK of something else: dropped, and never answered since it is a RST.
        h.Deliver(new Segment(ServicePort, syn.SourcePort, 0, syn.Seq, TcpFlags.Rst | TcpFlags.Ack, 0));
        h.Deliver(new Segment(ServicePort, syn.SourcePort, 0, syn.Seq + 2, TcpFlags.Rst | TcpFlags.Ack, 0));
        h.AssertNothingSent();
        Assert.Equal(TcpState.SynSent, connection.State);

        // A non-RST segment with a bad ACK earns <SEQ=SEG.ACK><CTL=RST>.
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss, syn.Seq + 7, TcpFlags.Ack, 0));
        var rst = h.Next();
        Assert.Equal(TcpFlags.Rst, rst.Flags);
        Assert.Equal(syn.Seq + 7, rst.Seq);
        Assert.Equal(TcpState.SynSent, connection.State);

        // What a closed port answers: RST+ACK acknowledging the SYN. The dial is refused.
        h.Deliver(new Segment(ServicePort, syn.SourcePort, 0, syn.Seq + 1, TcpFlags.Rst | TcpFlags.Ack, 0));
        Assert.Equal(TcpState.Closed, connection.State);
        Assert.Equal(SocketError.ConnectionRefused, connection.Error);
        var refused = await Assert.ThrowsAsync<SocketException>(() => connect);
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.Equal(0, h.ConnectionCount);
        h.AssertNothingSent();
    }

    [Fact]
    public async Task Rst_in_syn_received_of_a_simultaneous_open_refuses_the_dial()
    {
        var h = new TcpHarness();
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, MeshTcpOptions.Default, CancellationToken.None);
        var syn = h.Next();
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss, 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() });
        h.Next();
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss + 1, 0, TcpFlags.Rst, 0));
        var refused = await Assert.ThrowsAsync<SocketException>(() => connect);
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.Equal(0, h.ConnectionCount);
    }

    [Fact]
    public async Task Syn_in_a_synchronized_state_earns_a_challenge_ack()
    {
        // RFC 5961 4.2: whatever its sequence number, a SYN on an established connection only gets an ACK.
        var h = new TcpHarness();
        var link = await OpenActiveAsync(h);
        foreach (uint seq in new[] { link.RcvNxt, link.RcvNxt + 10, PeerIss, 42u })
        {
            link.Send(TcpFlags.Syn, seq, 0);
            link.ExpectAck();
            Assert.Equal(TcpState.Established, link.State);
        }
    }

    [Fact]
    public async Task Ack_of_data_never_sent_is_answered_with_an_ack_and_dropped()
    {
        var h = new TcpHarness();
        var link = await OpenActiveAsync(h);
        link.Send(TcpFlags.Ack | TcpFlags.Psh, link.RcvNxt, link.SndNxt + 500, data: new byte[20]);
        link.ExpectAck(); // RCV.NXT has not moved: the data was dropped with the segment
        Assert.Equal(0, link.Connection.Counters.BytesReceived);
        Assert.Equal(TcpState.Established, link.State);
    }

    // ================================================================== closed ports

    [Fact]
    public void A_segment_for_a_closed_port_gets_a_reset_numbered_per_rfc_9293()
    {
        var h = new TcpHarness();
        const ushort closed = 81;

        // No ACK in the segment: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
        h.Deliver(new Segment(PeerEphemeralPort, closed, 5000, 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() });
        var rst = h.Next();
        Assert.Equal((closed, PeerEphemeralPort), (rst.SourcePort, rst.DestinationPort));
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(0u, rst.Seq);
        Assert.Equal(5001u, rst.Ack);
        Assert.Equal(0, rst.Window);
        Assert.Empty(rst.Payload);
        Assert.Equal(TcpOptions.None, rst.Options);

        // SYN + FIN + 10 bytes occupy 12 sequence numbers, across the wrap.
        h.Deliver(new Segment(PeerEphemeralPort, closed, 0xFFFF_FFFA, 0, TcpFlags.Syn | TcpFlags.Fin, 65535) { Payload = new byte[10] });
        rst = h.Next();
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(0u, rst.Seq);
        Assert.Equal(6u, rst.Ack);

        // With an ACK: <SEQ=SEG.ACK><CTL=RST>.
        h.Deliver(new Segment(PeerEphemeralPort, closed, 7000, 0x8000_0001, TcpFlags.Ack | TcpFlags.Psh, 65535) { Payload = new byte[10] });
        rst = h.Next();
        Assert.Equal(TcpFlags.Rst, rst.Flags);
        Assert.Equal(0x8000_0001u, rst.Seq);
        Assert.Equal(0, rst.Window);

        // A RST is never answered.
        h.Deliver(new Segment(PeerEphemeralPort, closed, 7000, 0, TcpFlags.Rst, 0));
        h.Deliver(new Segment(PeerEphemeralPort, closed, 7000, 5, TcpFlags.Rst | TcpFlags.Ack, 0));
        h.AssertNothingSent();
        Assert.Equal(5, h.Drops.Get(DropReason.TcpNoConnection));
        Assert.Equal(0, h.ConnectionCount);
    }

    [Fact]
    public void An_ack_to_a_listening_port_without_a_connection_gets_a_reset_from_its_ack_number()
    {
        var h = new TcpHarness();
        h.Stack.Tcp.Listen(ServicePort, new MeshTcpListenerOptions());
        h.Deliver(new Segment(PeerEphemeralPort, ServicePort, 100, 0xDEAD_BEEF, TcpFlags.Ack, 65535));
        var rst = h.Next();
        Assert.Equal(TcpFlags.Rst, rst.Flags);
        Assert.Equal(0xDEAD_BEEFu, rst.Seq);
        h.Deliver(new Segment(PeerEphemeralPort, ServicePort, 100, 0, TcpFlags.Rst, 65535));
        h.AssertNothingSent();
        Assert.Equal(0, h.ConnectionCount);
    }

    // ================================================================== retransmission

    [Fact]
    public async Task Syn_is_retransmitted_after_1_2_4_8_16_32_s_then_the_dial_times_out()
    {
        var h = new TcpHarness();
        var options = new MeshTcpOptions { ConnectTimeout = TimeSpan.FromHours(1) };
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, options, CancellationToken.None);
        var syn = h.Next();
        var connection = h.Connection;
        Assert.Equal(TcpConstants.InitialRto, connection.RetransmissionTimeout);
        Assert.Equal(TimeSpan.FromSeconds(1), TcpConstants.InitialRto); // RFC 6298 2.1

        int[] gaps = [1, 2, 4, 8, 16, 32];
        Assert.Equal(TcpConstants.MaxSynRetries, gaps.Length);
        foreach (int seconds in gaps)
        {
            h.Advance(TimeSpan.FromSeconds(seconds) - TimeSpan.FromTicks(1));
            h.AssertNothingSent();
            h.Advance(TimeSpan.FromTicks(1));
            var again = h.Next();
            Assert.Equal(TcpFlags.Syn, again.Flags);
            Assert.Equal(syn.Seq, again.Seq);
            Assert.Equal(syn.Options.MaxSegmentSize, again.Options.MaxSegmentSize);
            Assert.Equal(syn.Options.WindowScale, again.Options.WindowScale);
            Assert.Equal(TimeSpan.FromSeconds(Math.Min(seconds * 2, 60)), connection.RetransmissionTimeout);
        }

        // The last wait is 64 s capped at the 60 s maximum RTO (RFC 6298 2.5 allows a cap of at least 60 s).
        h.Advance(TimeSpan.FromSeconds(60) - TimeSpan.FromTicks(1));
        Assert.Equal(TcpState.SynSent, connection.State);
        h.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(TcpState.Closed, connection.State);
        Assert.Equal(SocketError.TimedOut, connection.Error);
        var timedOut = await Assert.ThrowsAsync<SocketException>(() => connect);
        Assert.Equal(SocketError.TimedOut, timedOut.SocketErrorCode);
        h.AssertNothingSent();
        Assert.Equal(0, h.ConnectionCount);
    }

    [Fact]
    public async Task Connect_timeout_ends_the_dial_before_the_syn_retries_run_out()
    {
        var h = new TcpHarness();
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, new MeshTcpOptions { ConnectTimeout = TimeSpan.FromSeconds(5) }, CancellationToken.None);
        h.Next();
        h.Advance(TimeSpan.FromSeconds(5));
        var timedOut = await Assert.ThrowsAsync<SocketException>(() => connect);
        Assert.Equal(SocketError.TimedOut, timedOut.SocketErrorCode);
        Assert.Equal(0, h.ConnectionCount);
        Assert.Equal(2, h.TakeAll().Count(s => s.Flags == TcpFlags.Syn)); // at 1 s and 3 s
    }

    [Fact]
    public async Task Rto_is_3_s_after_the_handshake_when_the_syn_was_retransmitted()
    {
        // RFC 6298 5.7: a timeout on the SYN with an RTO below 3 s re-initialises the RTO to 3 s for the data.
        var h = new TcpHarness();
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, MeshTcpOptions.Default, CancellationToken.None);
        var syn = h.Next();
        h.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(syn.Seq, h.Next().Seq);
        h.Advance(Rtt);
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, 65535) { Options = PeerSynOptions() });
        var connection = await connect;
        Assert.Equal(TimeSpan.FromSeconds(3), connection.RetransmissionTimeout);

        // The data's first timeout then comes at 3 s.
        await connection.WriteAsync(new byte[10], CancellationToken.None);
        h.TakeAll();
        h.Advance(TimeSpan.FromSeconds(3) - TimeSpan.FromTicks(1));
        h.AssertNothingSent();
        h.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(10, h.Next().Payload.Length);
    }

    [Fact]
    public async Task Rto_is_3_s_after_the_handshake_when_the_syn_ack_was_retransmitted()
    {
        var h = new TcpHarness();
        var listener = h.Stack.Tcp.Listen(ServicePort, new MeshTcpListenerOptions());
        var link = await SynReceivedAsync(h, listener);
        h.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, h.Next().Flags);
        h.Advance(Rtt);
        link.SendAck();
        Assert.Equal(TcpState.Established, link.State);
        Assert.Equal(TimeSpan.FromSeconds(3), link.Connection.RetransmissionTimeout);
    }

    [Fact]
    public async Task Rto_keeps_a_backed_off_value_above_3_s_after_the_handshake()
    {
        var h = new TcpHarness();
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, MeshTcpOptions.Default, CancellationToken.None);
        var syn = h.Next();
        h.Advance(TimeSpan.FromSeconds(3)); // SYNs again at 1 s and 3 s: the RTO is 4 s
        Assert.Equal(2, h.TakeAll().Count);
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, 65535) { Options = PeerSynOptions() });
        var connection = await connect;
        Assert.Equal(TimeSpan.FromSeconds(4), connection.RetransmissionTimeout);
    }

    [Fact]
    public void Syn_ack_is_retransmitted_with_backoff_then_the_half_open_connection_is_dropped()
    {
        var h = new TcpHarness();
        var listener = h.Stack.Tcp.Listen(ServicePort, new MeshTcpListenerOptions());
        h.Deliver(new Segment(PeerEphemeralPort, ServicePort, PeerIss, 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() });
        var synAck = h.Next();
        int[] gaps = [1, 2, 4, 8, 16];
        Assert.Equal(TcpConstants.MaxSynAckRetries, gaps.Length);
        foreach (int seconds in gaps)
        {
            h.Advance(TimeSpan.FromSeconds(seconds) - TimeSpan.FromTicks(1));
            h.AssertNothingSent();
            h.Advance(TimeSpan.FromTicks(1));
            var again = h.Next();
            Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, again.Flags);
            Assert.Equal(synAck.Seq, again.Seq);
            Assert.Equal(synAck.Ack, again.Ack);
        }

        h.Advance(TimeSpan.FromSeconds(32) - TimeSpan.FromTicks(1));
        Assert.Equal(1, h.ConnectionCount);
        h.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(0, h.ConnectionCount);
        h.AssertNothingSent();

        // The listener is still there.
        _ = listener;
        h.Deliver(new Segment(PeerEphemeralPort, ServicePort, unchecked(PeerIss + 100_000), 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() });
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, h.Next().Flags);
    }

    [Fact]
    public async Task Data_is_retransmitted_after_the_rto_which_doubles_up_to_60_s_then_the_connection_gives_up()
    {
        var h = new TcpHarness();
        var link = await OpenActiveAsync(h);
        Assert.Equal(RtoAfterHandshake, link.Connection.RetransmissionTimeout);
        var payload = Enumerable.Range(0, 100).Select(i => (byte)i).ToArray();
        await link.Connection.WriteAsync(payload, CancellationToken.None);
        var first = h.Next();
        Assert.Equal(link.SndNxt, first.Seq);
        Assert.Equal(payload, first.Payload);

        var rto = RtoAfterHandshake;
        for (int retry = 1; retry <= TcpConstants.MaxRetries; retry++)
        {
            h.Advance(rto - TimeSpan.FromTicks(1));
            h.AssertNothingSent();
            h.Advance(TimeSpan.FromTicks(1));
            var again = h.Next();
            Assert.Equal(first.Seq, again.Seq);
            Assert.Equal(link.RcvNxt, again.Ack);
            Assert.Equal(payload, again.Payload);
            rto = rto * 2 > TcpConstants.MaxRto ? TcpConstants.MaxRto : rto * 2;
            Assert.Equal(rto, link.Connection.RetransmissionTimeout);
            if (retry == 1)
            {
                Assert.Equal(link.Connection.SegmentSize, link.Connection.CongestionWindow); // RFC 5681 loss window: one segment
            }
        }

        h.Advance(rto - TimeSpan.FromTicks(1));
        h.AssertNothingSent();
        h.Advance(TimeSpan.FromTicks(1));
        var rst = h.Next();
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(link.SndNxt + 100, rst.Seq);
        Assert.Equal(TcpState.Closed, link.State);
        Assert.Equal(SocketError.TimedOut, link.Connection.Error);
        Assert.Equal(TcpConstants.MaxRetries, link.Connection.Counters.Retransmissions);
        h.AssertNothingSent();
    }

    [Fact]
    public async Task An_ack_after_a_retransmission_stops_the_timer()
    {
        var h = new TcpHarness();
        var link = await OpenActiveAsync(h);
        await link.Connection.WriteAsync(new byte[100], CancellationToken.None);
        h.Next();
        h.Advance(RtoAfterHandshake);
        h.Next();
        link.SndNxt += 100;
        h.Advance(50);
        link.SendAck();
        h.Advance(TimeSpan.FromMinutes(10));
        h.AssertNothingSent();
        Assert.Equal(TcpState.Established, link.State);
        // Karn: the ACK of a retransmission gives no sample, so the backed-off RTO stays (RFC 6298 5.7).
        Assert.Equal(RtoAfterHandshake * 2, link.Connection.RetransmissionTimeout);
    }

    // ================================================================== zero window

    [Fact]
    public async Task Zero_window_is_probed_at_snd_una_minus_1_with_backoff_until_it_opens()
    {
        var h = new TcpHarness();
        var link = await OpenActiveAsync(h, peerWindow: 0);
        await link.Connection.WriteAsync(new byte[100], CancellationToken.None);
        h.AssertNothingSent(); // nothing fits a zero window

        var interval = RtoAfterHandshake;
        for (int probe = 0; probe < 10; probe++)
        {
            h.Advance(interval - TimeSpan.FromTicks(1));
            h.AssertNothingSent();
            h.Advance(TimeSpan.FromTicks(1));
            var p = h.Next();
            Assert.Equal(TcpFlags.Ack, p.Flags);
            Assert.Equal(link.SndNxt - 1, p.Seq); // SND.UNA - 1: out of the peer's window, so it must answer
            Assert.Equal(link.RcvNxt, p.Ack);
            Assert.Empty(p.Payload);

            // The peer answers: still closed.
            link.SendAck(window: 0);
            h.AssertNothingSent();
            Assert.Equal(TcpState.Established, link.State);
            interval = interval * 2 > TcpConstants.MaxPersist ? TcpConstants.MaxPersist : interval * 2;
        }

        Assert.Equal(TcpConstants.MaxPersist, interval);
        Assert.Equal(10, link.Connection.Counters.WindowProbes);

        // The window opens: the data goes at once, and the probing stops.
        h.Advance(1000);
        link.SendAck(window: 50);
        var data = h.Next();
        Assert.Equal(link.SndNxt, data.Seq);
        Assert.Equal(50, data.Payload.Length); // no more than the window
        link.SndNxt += 50;
        link.SendAck(window: 1000);
        data = h.Next();
        Assert.Equal(link.SndNxt, data.Seq);
        Assert.Equal(50, data.Payload.Length);
        link.SndNxt += 50;
        link.SendAck(window: 1000);
        h.Advance(TimeSpan.FromMinutes(10));
        h.AssertNothingSent();
        Assert.Equal(10, link.Connection.Counters.WindowProbes);
    }

    [Fact]
    public async Task A_window_that_closes_after_data_is_probed_too()
    {
        var h = new TcpHarness();
        var link = await OpenActiveAsync(h);
        await link.Connection.WriteAsync(new byte[100], CancellationToken.None);
        h.Next();
        link.SndNxt += 100;
        h.Advance(Rtt);
        link.SendAck(window: 0);
        // A second 100 ms sample: RTTVAR = 3/4 · 50 ms, SRTT = 100 ms, RTO = 100 + 4 · 37.5 = 250 ms.
        var rto = TimeSpan.FromMilliseconds(250);
        Assert.Equal(rto, link.Connection.RetransmissionTimeout);
        await link.Connection.WriteAsync(new byte[10], CancellationToken.None);
        h.AssertNothingSent();
        h.Advance(rto);
        var probe = h.Next();
        Assert.Equal(link.SndNxt - 1, probe.Seq);
        h.Advance(rto * 2);
        Assert.Equal(link.SndNxt - 1, h.Next().Seq);
        link.SendAck(window: 1000);
        var data = h.Next();
        Assert.Equal(link.SndNxt, data.Seq);
        Assert.Equal(10, data.Payload.Length);
    }

    [Fact]
    public async Task Keepalive_probes_an_idle_peer_at_snd_una_minus_1_and_resets_after_the_unanswered_ones()
    {
        var h = new TcpHarness();
        var options = new MeshTcpOptions { KeepAliveTime = TimeSpan.FromSeconds(10), KeepAliveInterval = TimeSpan.FromSeconds(1), KeepAliveProbes = 3 };
        var link = await OpenActiveAsync(h, options);

        h.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromTicks(1));
        h.AssertNothingSent();
        h.Advance(TimeSpan.FromTicks(1));
        var probe = h.Next();
        Assert.Equal(TcpFlags.Ack, probe.Flags);
        Assert.Equal(link.SndNxt - 1, probe.Seq);
        Assert.Equal(link.RcvNxt, probe.Ack);
        Assert.Empty(probe.Payload);

        // An answer makes the connection idle from now on.
        h.Advance(500);
        link.SendAck();
        h.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromTicks(1));
        h.AssertNothingSent();
        h.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(link.SndNxt - 1, h.Next().Seq);

        // No answers: two more probes one interval apart, then a reset.
        for (int i = 0; i < 2; i++)
        {
            h.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(link.SndNxt - 1, h.Next().Seq);
        }

        h.Advance(TimeSpan.FromSeconds(1));
        var rst = h.Next();
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(link.SndNxt, rst.Seq);
        Assert.Equal(TcpState.Closed, link.State);
        Assert.Equal(SocketError.TimedOut, link.Connection.Error);
        Assert.Equal(4, link.Connection.Counters.KeepaliveProbes);
        h.AssertNothingSent();
    }

    // ================================================================== timestamps and ACKs

    [Fact]
    public async Task Paws_drops_a_segment_with_an_older_timestamp_and_acknowledges()
    {
        var h = new TcpHarness();
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, MeshTcpOptions.Default, CancellationToken.None);
        var syn = h.Next();
        var link = new Link { H = h, Connection = h.Connection, LocalPort = syn.SourcePort, RemotePort = ServicePort, Iss = syn.Seq, SndNxt = syn.Seq + 1, RcvNxt = PeerIss + 1 };
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, 65535)
        {
            Options = PeerSynOptions(timestamps: true, tsVal: 5000, tsEcr: syn.Options.TimestampValue),
        });
        await connect;
        Assert.Equal(5000u, link.ExpectAck().Options.TimestampEcho);

        link.PeerOptions = Timestamps(5001);
        link.SendData(new byte[100]);
        h.AssertNothingSent(); // delayed

        // An old duplicate (its timestamp is below TS.Recent = 5001) carrying the next bytes.
        link.PeerOptions = Timestamps(4000);
        link.Send(TcpFlags.Ack | TcpFlags.Psh, link.RcvNxt, link.SndNxt, data: new byte[100]);
        var ack = link.ExpectAck(); // RCV.NXT did not move past the dropped data
        Assert.True(ack.Options.HasTimestamps);
        Assert.Equal(5001u, ack.Options.TimestampEcho);
        Assert.Equal(100, link.Connection.Counters.BytesReceived);
        Assert.Equal(1, h.Drops.Get(DropReason.TcpUnacceptable));

        // A timestamp equal to TS.Recent passes (RFC 7323 5.3 drops only older ones).
        link.PeerOptions = Timestamps(5001);
        link.SendData(new byte[100]);
        Assert.Equal(200, link.Connection.Counters.BytesReceived);

        // A RST is exempt from PAWS (RFC 7323 5.3 R1).
        link.PeerOptions = Timestamps(1);
        link.Send(TcpFlags.Rst, link.RcvNxt, 0, window: 0);
        Assert.Equal(TcpState.Closed, link.State);
        Assert.Equal(SocketError.ConnectionReset, link.Connection.Error);
    }

    [Fact]
    public async Task Timestamp_wrap_is_not_mistaken_for_an_old_segment()
    {
        var h = new TcpHarness();
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, MeshTcpOptions.Default, CancellationToken.None);
        var syn = h.Next();
        var link = new Link { H = h, Connection = h.Connection, LocalPort = syn.SourcePort, RemotePort = ServicePort, Iss = syn.Seq, SndNxt = syn.Seq + 1, RcvNxt = PeerIss + 1 };
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, 65535)
        {
            Options = PeerSynOptions(timestamps: true, tsVal: 0xFFFF_FFF0, tsEcr: syn.Options.TimestampValue),
        });
        await connect;
        link.ExpectAck();
        link.PeerOptions = Timestamps(5); // 21 ticks later, across the wrap
        link.SendData(new byte[10]);
        link.SendData(new byte[10]); // the second segment is acknowledged at once
        Assert.Equal(5u, link.ExpectAck().Options.TimestampEcho);
        Assert.Equal(20, link.Connection.Counters.BytesReceived);
        Assert.Equal(0, h.Drops.Get(DropReason.TcpUnacceptable));
    }

    [Fact]
    public async Task Delayed_ack_fires_after_40_ms_and_every_second_segment_is_acked_at_once()
    {
        var h = new TcpHarness();
        var link = await OpenActiveAsync(h);
        link.SendData(new byte[100]);
        h.AssertNothingSent();
        h.Advance(TcpConstants.DelayedAck - TimeSpan.FromTicks(1));
        h.AssertNothingSent();
        h.Advance(TimeSpan.FromTicks(1));
        var ack = link.ExpectAck();
        Assert.Equal(65535 - 100, ack.Window); // the right edge does not move for 100 unread bytes (receiver SWS avoidance)
        Assert.Equal(TimeSpan.FromMilliseconds(40), TcpConstants.DelayedAck);

        link.SendData(new byte[100]);
        h.AssertNothingSent();
        link.SendData(new byte[100]);
        link.ExpectAck(); // RFC 9293 3.8.6.3 / RFC 5681 4.2: at least every second full segment
        h.Advance(TimeSpan.FromSeconds(1));
        h.AssertNothingSent(); // and no delayed ACK left behind
    }

    [Fact]
    public async Task Out_of_order_data_is_acked_at_once_with_a_sack_block_and_the_hole_fill_too()
    {
        var h = new TcpHarness();
        var link = await OpenActiveAsync(h, peerSyn: PeerSynOptions(sack: true));
        uint start = link.RcvNxt;
        link.Send(TcpFlags.Ack, start + 100, link.SndNxt, data: new byte[50]);
        var dupAck = link.ExpectAck();
        Assert.Equal(1, dupAck.Options.SackBlockCount);
        Assert.Equal(new SackBlock(start + 100, start + 150), dupAck.Options.GetSackBlock(0));

        link.SendData(new byte[100]); // fills the hole
        link.RcvNxt += 50;
        var ack = link.ExpectAck();
        Assert.Equal(0, ack.Options.SackBlockCount);
        Assert.Equal(150, link.Connection.Counters.BytesReceived);
    }
}
