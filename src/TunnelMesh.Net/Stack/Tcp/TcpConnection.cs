using System.Net.Sockets;
using System.Runtime.CompilerServices;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Stack.Tcp;

/// <summary>The four numbers that name a connection (addresses host-order).</summary>
internal readonly record struct TcpTuple(uint LocalAddress, ushort LocalPort, uint RemoteAddress, ushort RemotePort);

/// <summary>
/// One TCP connection: the whole RFC 9293 state machine, with window scaling and timestamps
/// (RFC 7323, PAWS included), SACK (RFC 2018) received into a scoreboard and used for loss recovery
/// (RFC 6675), NewReno recovery without SACK (RFC 6582), RTO per RFC 6298, CUBIC or NewReno
/// congestion control, delayed ACKs, Nagle, sender and receiver silly-window avoidance, zero-window
/// probes, keepalive, half-close, TIME_WAIT, and a receive buffer that grows with the
/// bandwidth-delay product.
/// </summary>
/// <remarks>
/// <para><b>Threading.</b> All state is guarded by one lock per connection, taken by the thread that
/// delivers segments, by the application's reads and writes, and by the connection's single timer;
/// it is never held across an await. Inside the lock the code is a plain single-threaded state
/// machine that reads the time once per event (<see cref="TcpStack.Now"/>), so tests drive it
/// deterministically with a manual clock. Application waiters are woken through
/// <see cref="TcpSignal"/>s whose continuations run on the thread pool.</para>
/// <para><b>Buffers.</b> Sent data waits in <see cref="_sendBuffer"/> until acknowledged (byte 0 is
/// <see cref="_sndBufStart"/>); received data goes straight into <see cref="_recvBuffer"/> at its
/// offset from RCV.NXT, with <see cref="_assembler"/> remembering which out-of-order ranges arrived.
/// Neither holds an array while empty, so idle connections are small.</para>
/// <para><b>Sequence space.</b> SND.UNA ≤ SND.NXT ≤ SND.MAX; after a retransmission timeout
/// SND.NXT goes back to SND.UNA (go-back-N under a one-segment window) while SND.MAX remembers the
/// highest sequence sent.</para>
/// </remarks>
internal sealed class TcpConnection : ITransmitBatchCompletion
{
    private static readonly TimeSpan Never = TimeSpan.MaxValue;
    private static readonly TimerCallback TimerFired = static s => ((TcpConnection)s!).OnTimer();

    private readonly TcpStack _stack;
    private readonly Lock _sync = new();
    private readonly MeshTcpOptions _options;
    private readonly TcpListenerCore? _listener;
    private readonly ByteRing _sendBuffer;
    private ByteRing _recvBuffer;
    private readonly TcpAssembler _assembler = new(TcpConstants.MaxReassemblyRanges);
    private readonly SackScoreboard _scoreboard = new(TcpConstants.MaxScoreboardRanges);
    private Retransmission[]? _retransmits; // allocated on the first loss: idle connections stay small
    private Retransmission[]? _resendScratch;
    private int _retransmitCount;
    private readonly RttEstimator _rtt = new(TcpConstants.InitialRto, TcpConstants.MinRto, TcpConstants.MaxRto);
    private readonly TcpSignal _readSignal = new();
    private readonly TcpSignal _writeSignal = new();
    private readonly SackBlock[] _sackScratch = new SackBlock[4];
    private readonly (int Start, int End)[] _rangeScratch = new (int Start, int End)[4];
    private readonly CongestionController _cc;
    private TaskCompletionSource? _connected;

    private TcpState _state;
    private SocketError _error = SocketError.Success;

    // Send sequence space (RFC 9293 3.3.1).
    private SeqNumber _iss;
    private SeqNumber _sndUna;
    private SeqNumber _sndNxt;
    private SeqNumber _sndMax;
    private SeqNumber _sndWl1;
    private SeqNumber _sndWl2;
    private SeqNumber _sndBufStart;
    private long _sndWnd;
    private long _maxSndWnd;
    private int _sndWndShift;
    private bool _finQueued;
    private bool _finSent;
    private SeqNumber _finSeq;

    // Receive sequence space.
    private SeqNumber _irs;
    private SeqNumber _rcvNxt;
    private SeqNumber _rcvAdvEdge;
    private SeqNumber _lastAckSent;
    private int _rcvWndShift;
    private bool _finReceived;
    private bool _hasPendingFin;
    private SeqNumber _pendingFinSeq;

    // Negotiated options.
    private int _mss = TcpConstants.DefaultMss;
    private int _smss = TcpConstants.DefaultMss;
    private bool _sackOk;
    private bool _tsOk;
    private bool _wsOk;
    private uint _tsRecent;
    private readonly uint _tsOffset;

    // Loss recovery and RTT.
    private int _dupAcks;
    private bool _inRecovery;
    private bool _ackDeferred; // registered for the end of this thread's received batch
    private bool _timeoutRepair; // the recovery is the SACK-guided repair after a retransmission timeout
    private SeqNumber _recoveryPoint;
    private SeqNumber _highRxt;
    private long _renoInflation;
    private bool _rttTiming;
    private SeqNumber _rttSeq;
    private TimeSpan _rttStart;
    private int _retries;

    // Timers: deadlines on the stack clock, Never when off; one ITimer armed at the earliest.
    private TimeSpan _rtoDeadline = Never;
    private TimeSpan _ackDeadline = Never;
    private TimeSpan _persistDeadline = Never;
    private TimeSpan _probeDeadline = Never;
    private TimeSpan _keepaliveDeadline = Never;
    private TimeSpan _closeDeadline = Never;
    private TimeSpan _armedDeadline = Never;
    private ITimer? _timer;
    private int _persistBackoff;
    private int _keepaliveProbes;
    private TimeSpan _lastReceived;
    private TimeSpan _lastSent;
    private bool _forceSend;

    // ACK policy.
    private int _segmentsSinceAck;
    private bool _ackNow;

    // Receive-buffer growth (bytes delivered in order per receiver-side RTT).
    private TimeSpan _rcvRtt = TimeSpan.FromMilliseconds(10);
    private TimeSpan _rcvSpaceStart;
    private long _rcvSpaceBytes;

    // Application side.
    private bool _readWaiting;
    private bool _writeWaiting;
    private int _writeNeed;
    private bool _appClosed;
    private bool _noDelay;
    private bool _removed;

    private TcpConnection(TcpStack stack, TcpTuple tuple, MeshTcpOptions options, TcpListenerCore? listener)
    {
        _stack = stack;
        Tuple = tuple;
        _options = options;
        _listener = listener;
        _noDelay = options.NoDelay;
        _cc = options.CongestionControl == TcpCongestionControl.NewReno
            ? new NewRenoController(TcpConstants.DefaultMss)
            : new CubicController(TcpConstants.DefaultMss);
        _sendBuffer = new ByteRing(TcpConstants.InitialSendBuffer, RoundUpToPowerOfTwo(options.MaxSendBufferSize), stack.BufferArrays);
        _rcvWndShift = WindowShiftFor(options.MaxReceiveBufferSize);
        _recvBuffer = new ByteRing(TcpConstants.InitialReceiveBuffer, RoundUpToPowerOfTwo(options.MaxReceiveBufferSize), stack.BufferArrays);
        _tsOffset = (uint)Random.Shared.Next();
        _iss = stack.NewInitialSequenceNumber(tuple);
        _sndUna = _iss;
        _sndNxt = _iss + 1;
        _sndMax = _sndNxt;
        _sndBufStart = _iss + 1;
        _recoveryPoint = _iss;
        _highRxt = _iss;
    }

    /// <summary>The connection's addresses and ports.</summary>
    public TcpTuple Tuple { get; }

    /// <summary>The current state (for tests and diagnostics; racy by nature).</summary>
    public TcpState State
    {
        get
        {
            lock (_sync)
            {
                return _state;
            }
        }
    }

    /// <summary>The error that ended the connection, or <see cref="SocketError.Success"/>.</summary>
    public SocketError Error
    {
        get
        {
            lock (_sync)
            {
                return _error;
            }
        }
    }

    /// <summary>The negotiated maximum segment size (data bytes per full segment, after options).</summary>
    public int SegmentSize
    {
        get
        {
            lock (_sync)
            {
                return _smss;
            }
        }
    }

    /// <summary>Whether SACK, timestamps and window scaling were negotiated (tests).</summary>
    internal (bool Sack, bool Timestamps, int SendShift, int ReceiveShift) Negotiated
    {
        get
        {
            lock (_sync)
            {
                return (_sackOk, _tsOk, _sndWndShift, _rcvWndShift);
            }
        }
    }

    /// <summary>Counters of this connection (tests, statistics).</summary>
    internal TcpConnectionCounters Counters { get; } = new();

    /// <summary>Current receive-buffer capacity (tests: growth and back-pressure).</summary>
    internal int ReceiveBufferCapacity
    {
        get
        {
            lock (_sync)
            {
                return _recvBuffer.Capacity;
            }
        }
    }

    /// <summary>Bytes of buffer memory this connection holds right now.</summary>
    internal long BufferMemory
    {
        get
        {
            lock (_sync)
            {
                return _sendBuffer.AllocatedBytes + _recvBuffer.AllocatedBytes;
            }
        }
    }

    /// <summary>The congestion window in bytes (tests, statistics).</summary>
    internal long CongestionWindow
    {
        get
        {
            lock (_sync)
            {
                return _cc.CongestionWindow;
            }
        }
    }

    /// <summary>The current retransmission timeout (tests).</summary>
    internal TimeSpan RetransmissionTimeout
    {
        get
        {
            lock (_sync)
            {
                return _rtt.Rto;
            }
        }
    }

    /// <summary>How far below RCV.NXT an old duplicate's sequence number may be for its ACK to count (the largest window).</summary>
    private const int MaxOldDuplicateDistance = 1 << 30;

    /// <summary>The send and receive sequence state in one line (test failure messages).</summary>
    internal string DebugState
    {
        get
        {
            lock (_sync)
            {
                return $"una {_sndUna} nxt {_sndNxt} max {_sndMax} wnd {_sndWnd} recovery {_inRecovery} point {_recoveryPoint} highRxt {_highRxt} " +
                    $"sacked {_scoreboard.SackedBytes}/{_scoreboard.RangeCount} retries {_retries} rcvNxt {_rcvNxt} ooo {_assembler.RangeCount} " +
                    $"rcvSpace {ReceiveSpace()} buffered {_sendBuffer.Count} tsRecent {_tsRecent} rto at {_rtoDeadline} persist at {_persistDeadline}";
            }
        }
    }

    /// <summary>Whether Nagle's algorithm is off.</summary>
    public bool NoDelay
    {
        get
        {
            lock (_sync)
            {
                return _noDelay;
            }
        }

        set
        {
            lock (_sync)
            {
                _noDelay = value;
                if (value)
                {
                    TrySend(_stack.Now);
                    ArmTimer(_stack.Now);
                }
            }
        }
    }

    // ================================================================== opening

    /// <summary>Active open: sends the SYN. Completes <see cref="ConnectedTask"/> when established or failed.</summary>
    public static TcpConnection Connect(TcpStack stack, TcpTuple tuple, MeshTcpOptions options)
    {
        var connection = new TcpConnection(stack, tuple, options, null)
        {
            _connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously),
        };
        return connection;
    }

    /// <summary>Sends the first SYN (after the connection is in the stack's table).</summary>
    public void StartConnect()
    {
        lock (_sync)
        {
            var now = _stack.Now;
            _state = TcpState.SynSent;
            _lastReceived = now;
            SendSyn(now, withAck: false);
            _rtoDeadline = now + _rtt.Rto;
            ArmTimer(now);
        }
    }

    /// <summary>Completes when the handshake of an active open succeeds; faults with a <see cref="SocketException"/> otherwise.</summary>
    public Task ConnectedTask => _connected?.Task ?? Task.CompletedTask;

    /// <summary>Passive open: a listener got a SYN. The connection answers with a SYN-ACK.</summary>
    public static TcpConnection Accept(TcpStack stack, TcpTuple tuple, TcpListenerCore listener, SeqNumber sequence, ushort window, in TcpOptions options)
    {
        var connection = new TcpConnection(stack, tuple, listener.Options.Connection, listener);
        lock (connection._sync)
        {
            var now = stack.Now;
            connection._lastReceived = now;
            connection._irs = sequence;
            connection._rcvNxt = sequence + 1;
            connection._rcvAdvEdge = connection._rcvNxt;
            connection.Negotiate(options, window);
            connection._state = TcpState.SynReceived;
        }

        return connection;
    }

    /// <summary>Sends the SYN-ACK of a passive open (after the connection is in the stack's table).</summary>
    public void StartAccept()
    {
        lock (_sync)
        {
            var now = _stack.Now;
            SendSyn(now, withAck: true);
            _rtoDeadline = now + _rtt.Rto;
            ArmTimer(now);
        }
    }

    /// <summary>Takes the peer's SYN options (RFC 7323: scaling and timestamps only when both sides offer them).</summary>
    private void Negotiate(in TcpOptions options, ushort window)
    {
        int peerMss = options.MaxSegmentSize != 0 ? options.MaxSegmentSize : TcpConstants.DefaultMss;
        _mss = Math.Max(TcpConstants.MinMss, Math.Min(peerMss, _stack.Mtu - TcpConstants.Ipv4TcpHeaders));
        _sackOk = options.SackPermitted;
        _tsOk = options.HasTimestamps;
        if (_tsOk)
        {
            _tsRecent = options.TimestampValue;
        }

        _wsOk = options.WindowScale >= 0;
        if (options.WindowScale >= 0)
        {
            _sndWndShift = Math.Min(options.WindowScale, 14);
        }
        else
        {
            // No scaling either way: our window field then is the whole window, so the buffer stops at 64 KiB.
            _sndWndShift = 0;
            _rcvWndShift = 0;
            _recvBuffer = new ByteRing(TcpConstants.InitialReceiveBuffer, Math.Min(_recvBuffer.MaxCapacity, 65536), _stack.BufferArrays);
        }

        _sndWnd = window; // the window in a SYN is never scaled
        _maxSndWnd = _sndWnd;
        _smss = _mss - (_tsOk ? TcpConstants.TimestampOptionSpace : 0);
        _cc.Mss = _smss;
    }

    // ================================================================== inbound segments

    /// <summary>Handles one segment of this connection (checksum already verified).</summary>
    public void OnSegment(TcpSegment segment, in TcpOptions options)
    {
        lock (_sync)
        {
            var now = _stack.Now;
            Counters.SegmentsReceived++;
            switch (_state)
            {
                case TcpState.Closed:
                    _stack.SendResetFor(Tuple, segment);
                    return;
                case TcpState.SynSent:
                    OnSegmentInSynSent(segment, options, now);
                    break;
                default:
                    OnSegmentSynchronized(segment, options, now);
                    break;
            }

            ArmTimer(now);
        }
    }

    /// <summary>RFC 9293 3.10.7.3, SYN-SENT.</summary>
    private void OnSegmentInSynSent(TcpSegment segment, in TcpOptions options, TimeSpan now)
    {
        var flags = segment.Flags;
        var ack = new SeqNumber(segment.AcknowledgmentNumber);
        bool hasAck = (flags & TcpFlags.Ack) != 0;
        if (hasAck && (ack <= _iss || ack > _sndNxt))
        {
            if ((flags & TcpFlags.Rst) == 0)
            {
                SendControl(ack, TcpFlags.Rst, now);
            }

            _stack.Drops.Increment(DropReason.TcpUnacceptable);
            return;
        }

        if ((flags & TcpFlags.Rst) != 0)
        {
            // RFC 5961 3.2: in SYN-SENT a RST counts only when it acknowledges our SYN.
            if (hasAck)
            {
                Fail(SocketError.ConnectionRefused, now);
            }

            return;
        }

        if ((flags & TcpFlags.Syn) == 0)
        {
            return;
        }

        _irs = new SeqNumber(segment.SequenceNumber);
        _rcvNxt = _irs + 1;
        _rcvAdvEdge = _rcvNxt;
        _lastReceived = now;
        Negotiate(options, segment.Window);
        if (hasAck)
        {
            _sndUna = ack;
            _sndWl1 = _irs;
            _sndWl2 = ack;
            if (_retries == 0)
            {
                _rtt.AddSample(now - _rttStart);
            }
            else
            {
                _rtt.RaiseTo(TcpConstants.RtoAfterSynTimeout);
            }

            _retries = 0;
            _rtoDeadline = Never;
            _state = TcpState.Established;
            Counters.Established = true;
            SendAck(now);
            StartKeepalive(now);
            _connected?.TrySetResult();
            return;
        }

        // Simultaneous open (RFC 9293 3.5, figure 8): answer with SYN-ACK and wait for its ACK.
        _state = TcpState.SynReceived;
        SendSyn(now, withAck: true);
    }

    /// <summary>RFC 9293 3.10.7.4, every state after SYN-SENT.</summary>
    private void OnSegmentSynchronized(TcpSegment segment, in TcpOptions options, TimeSpan now)
    {
        var flags = segment.Flags;
        var seq = new SeqNumber(segment.SequenceNumber);
        var payload = segment.Payload;
        bool rst = (flags & TcpFlags.Rst) != 0;
        bool syn = (flags & TcpFlags.Syn) != 0;
        bool fin = (flags & TcpFlags.Fin) != 0;

        // A retransmitted SYN while our SYN-ACK is unanswered: send the SYN-ACK again.
        if (_state == TcpState.SynReceived && syn && !rst && seq == _irs)
        {
            // Simultaneous open (RFC 9293 figure 8, line 6): the peer's SYN-ACK acknowledges our SYN;
            // take its ACK and skip its already-counted SYN (as Linux's tcp_validate_incoming does).
            if (_listener is null && (flags & TcpFlags.Ack) != 0 && !fin && payload.IsEmpty
                && new SeqNumber(segment.AcknowledgmentNumber) == _sndNxt)
            {
                syn = false;
                seq += 1;
            }
            else
            {
                SendSyn(now, withAck: true);
                return;
            }
        }

        // PAWS (RFC 7323 5.3): a timestamp older than the last one in sequence means an old duplicate.
        if (_tsOk && options.HasTimestamps && !rst && unchecked((int)(options.TimestampValue - _tsRecent)) < 0)
        {
            _stack.Drops.Increment(DropReason.TcpUnacceptable);
            SendAck(now);
            return;
        }

        // Acceptability (RFC 9293 3.10.7.4, first check) against the space the receive buffer has.
        int segmentLength = payload.Length + (syn ? 1 : 0) + (fin ? 1 : 0);
        long window = ReceiveSpace();
        bool acceptable;
        if (segmentLength == 0)
        {
            acceptable = window == 0 ? seq == _rcvNxt : seq >= _rcvNxt && seq - _rcvNxt < window;
        }
        else
        {
            acceptable = window != 0 && (
                (seq >= _rcvNxt && seq - _rcvNxt < window)
                || ((seq + (segmentLength - 1)) >= _rcvNxt && (seq + (segmentLength - 1)) - _rcvNxt < window));
        }

        bool ackOnly = false;
        if (!acceptable)
        {
            // With a closed window, ACKs (and RSTs) still count (RFC 9293: "special allowance").
            if (window == 0 && seq == _rcvNxt && !syn)
            {
                // Data (a window probe) or a FIN at a closed window: unacceptable, so it is answered
                // with an ACK (RFC 9293 3.10.7.4), else a prober that sends a byte never hears back.
                ackOnly = true;
                _ackNow |= segmentLength > 0;
            }
            else if (!rst && !syn && (flags & TcpFlags.Ack) != 0 && _state != TcpState.TimeWait
                && seq + segmentLength <= _rcvNxt && _rcvNxt - seq <= MaxOldDuplicateDistance)
            {
                // An old duplicate: data we already hold, retransmitted after the peer's timeout. Its
                // ACK field is current, and ignoring it (as RFC 9293 would) can deadlock two senders
                // that both went back to SND.UNA; Linux takes it too (tcp_sequence against rcv_wup).
                // The data is dropped and our ACK tells the peer what it need not send again.
                _stack.Drops.Increment(DropReason.TcpUnacceptable);
                ackOnly = true;
                _ackNow = true;
            }
            else
            {
                if (!rst)
                {
                    _stack.Drops.Increment(DropReason.TcpUnacceptable);
                    SendAck(now);
                    if (_state == TcpState.TimeWait && fin)
                    {
                        // A retransmitted FIN in TIME_WAIT: acknowledge it and restart the 2·MSL wait.
                        _closeDeadline = now + TcpConstants.TimeWait;
                    }
                }

                return;
            }
        }

        _lastReceived = now;
        _keepaliveProbes = 0;
        if (_keepaliveDeadline != Never)
        {
            StartKeepalive(now);
        }

        if (_tsOk && options.HasTimestamps && seq <= _lastAckSent)
        {
            _tsRecent = options.TimestampValue; // RFC 7323 4.3
        }

        if (rst)
        {
            // RFC 5961 3.2: only an exact RST resets; one merely in the window earns a challenge ACK.
            if (seq == _rcvNxt)
            {
                OnResetReceived(now);
            }
            else
            {
                SendAck(now);
            }

            return;
        }

        if (syn)
        {
            // RFC 5961 4.2: a SYN in a synchronized state gets a challenge ACK.
            SendAck(now);
            return;
        }

        if ((flags & TcpFlags.Ack) == 0)
        {
            return;
        }

        var ack = new SeqNumber(segment.AcknowledgmentNumber);
        if (_state == TcpState.SynReceived)
        {
            if (!(_sndUna < ack && ack <= _sndNxt))
            {
                SendControl(ack, TcpFlags.Rst, now);
                return;
            }

            if (_retries == 0)
            {
                _rtt.AddSample(now - _rttStart);
            }
            else
            {
                _rtt.RaiseTo(TcpConstants.RtoAfterSynTimeout);
            }

            _retries = 0;
            _rtoDeadline = Never;
            _sndUna = ack;
            _sndWl1 = seq;
            _sndWl2 = ack;
            _sndWnd = (long)segment.Window << _sndWndShift;
            _maxSndWnd = Math.Max(_maxSndWnd, _sndWnd);
            _state = TcpState.Established;
            Counters.Established = true;
            StartKeepalive(now);
            if (_listener is not null)
            {
                if (!_listener.TryEnqueue(this))
                {
                    _stack.Drops.Increment(DropReason.TcpBacklogFull);
                    SendControl(_sndMax, TcpFlags.Rst | TcpFlags.Ack, now);
                    Fail(SocketError.ConnectionAborted, now);
                    return;
                }
            }
            else
            {
                _connected?.TrySetResult();
            }
        }

        if (!ProcessAck(segment, options, seq, ack, payload.Length, syn || fin, now))
        {
            return;
        }

        switch (_state)
        {
            case TcpState.FinWait1 when FinAcked:
                _state = TcpState.FinWait2;
                if (_appClosed)
                {
                    _closeDeadline = now + TcpConstants.FinWait2Timeout;
                }

                break;
            case TcpState.Closing when FinAcked:
                EnterTimeWait(now);
                return;
            case TcpState.LastAck when FinAcked:
                Close(now);
                return;
            case TcpState.Closed:
                return;
        }

        if (ackOnly)
        {
            TrySend(now);
            FlushAck(now);
            return;
        }

        if (payload.Length > 0)
        {
            if (_state is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2)
            {
                if (_appClosed)
                {
                    // Data for an application that has closed: nobody can read it, so reset (as Linux does).
                    SendControl(_sndMax, TcpFlags.Rst | TcpFlags.Ack, now);
                    Fail(SocketError.ConnectionReset, now);
                    return;
                }

                ProcessData(seq, segment.Payload, options, now);
            }
        }

        if (fin)
        {
            // The FIN occupies the sequence number after the data; it counts once everything before it has arrived.
            var finSeq = seq + payload.Length;
            if (finSeq >= _rcvNxt && !_finReceived)
            {
                _hasPendingFin = true;
                _pendingFinSeq = finSeq;
            }

            _ackNow = true;
        }

        TryConsumeFin(now);
        if (_state == TcpState.Closed)
        {
            return;
        }

        TrySend(now);
        FlushAck(now);
    }

    private bool FinAcked => _finSent && _sndUna == _finSeq + 1;

    /// <summary>The ACK field (RFC 9293 3.10.7.4, fifth check). False when the segment must be dropped.</summary>
    private bool ProcessAck(TcpSegment segment, in TcpOptions options, SeqNumber seq, SeqNumber ack, int payloadLength, bool synOrFin, TimeSpan now)
    {
        if (ack > _sndMax)
        {
            // It acknowledges something not yet sent.
            _stack.Drops.Increment(DropReason.TcpUnacceptable);
            SendAck(now);
            return false;
        }

        bool windowChanged = false;
        if (_sndWl1 < seq || (_sndWl1 == seq && _sndWl2 <= ack))
        {
            long window = (long)segment.Window << _sndWndShift;
            windowChanged = window != _sndWnd;
            _sndWnd = window;
            _sndWl1 = seq;
            _sndWl2 = ack;
            _maxSndWnd = Math.Max(_maxSndWnd, window);
            if (window > 0)
            {
                _persistDeadline = Never;
                _persistBackoff = 0;
            }
        }

        long newlySacked = 0;
        if (_sackOk && options.SackBlockCount > 0 && ack >= _sndUna)
        {
            newlySacked = _scoreboard.Update(ack, options.SackBlocks, _sndMax);
        }

        if (ack > _sndUna)
        {
            OnNewAck(ack, options.HasTimestamps ? options.TimestampEcho : 0, now);
        }
        else if (_inRecovery && newlySacked > 0)
        {
            DetectLostRetransmissions(now);
            ScheduleProbe(now);
        }
        else if (ack == _sndUna && _sndMax > _sndUna && (newlySacked > 0 || (payloadLength == 0 && !synOrFin && !windowChanged)))
        {
            OnDuplicateAck(now);
        }

        return true;
    }

    private void OnNewAck(SeqNumber ack, uint timestampEcho, TimeSpan now)
    {
        int acked = ack - _sndUna;
        var dataEnd = _sndBufStart + _sendBuffer.Count;
        int dataAcked = Math.Max(0, SeqNumber.Min(ack, dataEnd) - _sndBufStart);
        if (dataAcked > 0)
        {
            _sendBuffer.Discard(dataAcked);
            _sndBufStart += dataAcked;
        }

        long flightBefore = _sndMax - _sndUna;
        _sndUna = ack;
        if (_sndNxt < _sndUna)
        {
            _sndNxt = _sndUna;
        }

        if (!_sackOk || _scoreboard.IsEmpty)
        {
            // nothing to do: the scoreboard drops ranges below the ACK itself on Update
        }

        TimeSpan? sample = null;
        if (_tsOk && timestampEcho != 0)
        {
            // RFC 7323 section 4.1: with timestamps every ACK that advances SND.UNA measures the
            // RTT, retransmissions included (the echo says which transmission it answers), so a
            // backed-off RTO recovers with the first ACK after a timeout instead of waiting for
            // Karn's next untimed segment.
            uint elapsed = TimestampNow(now) - timestampEcho;
            if (elapsed < 60_000)
            {
                sample = TimeSpan.FromMilliseconds(Math.Max(1, elapsed));
                _rtt.AddSample(sample.Value);
            }

            _rttTiming = false;
        }
        else if (_rttTiming && ack > _rttSeq)
        {
            sample = now - _rttStart;
            _rttTiming = false;
            _rtt.AddSample(sample.Value);
        }

        _retries = 0;
        bool growWindow = !_inRecovery || _timeoutRepair; // after a timeout, slow start goes on while the holes are refilled
        if (_inRecovery)
        {
            if (ack >= _recoveryPoint)
            {
                _inRecovery = false;
                _renoInflation = 0;
                _retransmitCount = 0;
                if (_timeoutRepair)
                {
                    _timeoutRepair = false;
                }
                else
                {
                    _cc.OnRecoveryExit(now);
                }
            }
            else if (_sackOk)
            {
                DetectLostRetransmissions(now);
            }
            else
            {
                // RFC 6582 partial ACK: the next hole is lost too; retransmit it, deflate by what was acked.
                RetransmitFrom(_sndUna, Math.Min(_smss, _sndMax - _sndUna), now);
                _renoInflation = Math.Max(0, _renoInflation - acked) + _smss;
            }
        }

        if (growWindow)
        {
            _cc.OnAck(acked, flightBefore, now, sample, _rtt.MinRtt);
        }

        _dupAcks = 0;
        _rtoDeadline = _sndUna == _sndMax ? Never : now + _rtt.Rto;
        ScheduleProbe(now);
        if (_sendBuffer.Count == 0 && _sendBuffer.AllocatedBytes != 0)
        {
            _sendBuffer.Trim();
        }

        if (_writeWaiting && (_sendBuffer.Free >= _writeNeed || _state is not (TcpState.Established or TcpState.CloseWait)))
        {
            _writeWaiting = false;
            _writeSignal.Set();
        }
    }

    /// <summary>Remembers a retransmission made during SACK recovery and how far new data had gone when it left.</summary>
    private void RecordRetransmission(SeqNumber start, int length)
    {
        _retransmits ??= new Retransmission[TcpConstants.MaxTrackedRetransmissions];
        _resendScratch ??= new Retransmission[16];
        if (_retransmitCount < _retransmits.Length)
        {
            _retransmits[_retransmitCount++] = new Retransmission(start, length, _sndMax);
        }
    }

    /// <summary>
    /// Lost-retransmission detection (what RFC 8985's RACK generalises): a retransmission still
    /// neither ACKed nor SACKed is lost when, beyond a reordering allowance of DupThresh segments,
    /// something sent after it has arrived: a later retransmission, or new data first sent after
    /// it. It goes out again at once; without this only the RTO repairs it, and at a few percent
    /// loss every such timeout collapses the window.
    /// </summary>
    private void DetectLostRetransmissions(TimeSpan now)
    {
        if (_retransmits is null || _resendScratch is null || _retransmitCount == 0)
        {
            return;
        }

        // The retransmissions are kept in the order they were sent; find the newest delivered one.
        int newestDelivered = -1;
        for (int i = 0; i < _retransmitCount; i++)
        {
            if (IsDelivered(_retransmits[i]))
            {
                newestDelivered = i;
            }
        }

        var highestSacked = _scoreboard.IsEmpty ? _sndUna : _scoreboard.HighestSacked;
        int count = _retransmitCount;
        int kept = 0;
        int resent = 0;
        for (int i = 0; i < count; i++)
        {
            var r = _retransmits[i];
            if (IsDelivered(r))
            {
                continue; // forget it
            }

            var end = r.Start + r.Length;
            var start = SeqNumber.Max(r.Start, _sndUna);

            if (newestDelivered - i >= TcpConstants.DupThresh || highestSacked - r.SentBefore >= TcpConstants.DupThresh * _smss)
            {
                Counters.LostRetransmissions++;
                RetransmitFrom(start, end - start, now);
                _resendScratch[resent++ % _resendScratch.Length] = new Retransmission(start, end - start, _sndMax);
                continue; // sent again: it moves to the end of the order
            }

            _retransmits[kept++] = r;
        }

        // Re-append the ones just sent again, newest last (overflow beyond the scratch is left to the RTO).
        for (int i = 0; i < Math.Min(resent, _resendScratch.Length) && kept < _retransmits.Length; i++)
        {
            _retransmits[kept++] = _resendScratch[i];
        }

        _retransmitCount = kept;
    }

    /// <summary>Whether a retransmission's range is all ACKed or SACKed.</summary>
    private bool IsDelivered(Retransmission r)
    {
        var end = r.Start + r.Length;
        return end <= _sndUna || (_scoreboard.IsSacked(SeqNumber.Max(r.Start, _sndUna)) && _scoreboard.IsSacked(end - 1));
    }

    /// <summary>
    /// RFC 5827 early retransmit (byte-based, with SACK): with fewer than four segments
    /// outstanding, three duplicate ACKs can never come, so once all but one segment's worth is
    /// SACKed the hole is lost. Returns the point below which unSACKed data counts as lost
    /// (SND.UNA when the rule does not apply).
    /// </summary>
    private SeqNumber EarlyRetransmitBoundary()
    {
        if (!_sackOk || _scoreboard.IsEmpty)
        {
            return _sndUna;
        }

        long outstanding = _sndMax - _sndUna;
        if (outstanding > TcpConstants.DupThresh * (long)_smss || outstanding - _scoreboard.SackedBytes > _smss)
        {
            return _sndUna;
        }

        return _scoreboard.HighestSacked;
    }

    /// <summary>
    /// Arms the tail loss probe (RFC 8985 section 7): two smoothed RTTs (plus the peer's delayed
    /// ACK when one segment is out) after the last new data or ACK, if that comes before the RTO.
    /// Unlike RFC 8985 also during SACK recovery: Linux answers the fourth and later out-of-order
    /// segments with one compressed SACK, and the retransmission that fills the hole with one
    /// cumulative ACK; when that single ACK is lost nothing else is in flight to bring another,
    /// and only the probe avoids a retransmission timeout.
    /// </summary>
    private void ScheduleProbe(TimeSpan now)
    {
        _probeDeadline = Never;
        if (!_sackOk || _sndMax == _sndUna || _rtt.SmoothedRtt is not { } srtt
            || _state is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck))
        {
            return;
        }

        var pto = srtt * 2;
        if (_sndMax - _sndUna <= _smss)
        {
            pto += TcpConstants.DelayedAck;
        }

        if (pto < TcpConstants.MinProbeTimeout)
        {
            pto = TcpConstants.MinProbeTimeout;
        }

        if (now + pto < _rtoDeadline)
        {
            _probeDeadline = now + pto;
        }
    }

    /// <summary>
    /// The tail loss probe: one segment (new data if the peer's window allows, else the last
    /// segment again) so that a loss at the end of a flight is reported by SACK and repaired by
    /// fast recovery instead of waiting for the retransmission timeout.
    /// </summary>
    private void OnProbeTimeout(TimeSpan now)
    {
        if (_sndMax == _sndUna || _state is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck))
        {
            return;
        }

        Counters.TailLossProbes++;
        long flight = _sndNxt - _sndUna;
        _forceSend = true;
        bool sentNew = _sndNxt == _sndMax && TrySendNew(flight + _smss, flight, now);
        _forceSend = false;
        if (!sentNew)
        {
            var start = SeqNumber.Max(_sndUna, _sndMax - _smss);
            RetransmitFrom(start, _sndMax - start, now);
        }

        _rtoDeadline = now + _rtt.Rto;
        _probeDeadline = Never; // RFC 8985 7.3: after a probe the RTO is armed, not another probe
    }

    private void OnDuplicateAck(TimeSpan now)
    {
        _dupAcks++;
        Counters.DuplicateAcks++;
        if (_inRecovery)
        {
            if (!_sackOk)
            {
                _renoInflation += _smss; // RFC 6582: each further duplicate means a segment left the network
            }

            return;
        }

        // RFC 6582 step 2 / RFC 6675: no new recovery until the data outstanding at the last one is acknowledged.
        if (_sndUna < _recoveryPoint)
        {
            return;
        }

        if (_dupAcks >= TcpConstants.DupThresh || (_sackOk && _scoreboard.IsLost(_sndUna, _smss)) || EarlyRetransmitBoundary() > _sndUna)
        {
            EnterRecovery(now);
        }
    }

    private void EnterRecovery(TimeSpan now)
    {
        Counters.FastRetransmits++;
        _inRecovery = true;
        _recoveryPoint = _sndMax;
        _cc.OnCongestionEvent(_sndMax - _sndUna, now);
        _rttTiming = false;
        _highRxt = _sndUna - 1;
        int length = Math.Min(_smss, _sndMax - _sndUna);
        RetransmitFrom(_sndUna, length, now);
        if (_sackOk)
        {
            _retransmitCount = 0;
            RecordRetransmission(_sndUna, length);
            _highRxt = _sndUna + (length - 1);
        }
        else
        {
            _renoInflation = TcpConstants.DupThresh * (long)_smss;
        }

        ScheduleProbe(now);
    }

    /// <summary>In-window data (RFC 9293 3.10.7.4, seventh check), into the receive buffer at its offset.</summary>
    private void ProcessData(SeqNumber seq, ReadOnlySpan<byte> payload, in TcpOptions options, TimeSpan now)
    {
        if (seq < _rcvNxt)
        {
            int skip = _rcvNxt - seq;
            if (skip >= payload.Length)
            {
                _ackNow = true; // an old duplicate: tell the sender where we are
                return;
            }

            payload = payload[skip..];
            seq = _rcvNxt;
        }

        int offset = seq - _rcvNxt;
        long space = ReceiveSpace() - offset;
        if (space <= 0)
        {
            _ackNow = true;
            return;
        }

        if (payload.Length > space)
        {
            payload = payload[..(int)space];
        }

        int advanced;
        if (offset == 0 && _assembler.IsEmpty)
        {
            int written = _recvBuffer.WriteAt(0, payload);
            _recvBuffer.Commit(written);
            advanced = written;
        }
        else
        {
            int written = _recvBuffer.WriteAt(offset, payload);
            if (_assembler.Add(offset, written))
            {
                advanced = _assembler.RemoveFront();
            }
            else if (offset == 0)
            {
                // In order, but every range slot holds out-of-order data: the bytes need no range,
                // they are delivered at once (refusing them stalled the connection on its first hole).
                _assembler.Advance(written);
                advanced = written;
            }
            else
            {
                _stack.Drops.Increment(DropReason.TcpReassemblyFull);
                _ackNow = true;
                return;
            }

            _recvBuffer.Commit(advanced);
            _ackNow = true; // out of order, or filling a hole: ACK at once (RFC 5681 4.2)
        }

        if (advanced > 0)
        {
            _rcvNxt += advanced;
            Counters.BytesReceived += advanced;
            _segmentsSinceAck++;
            if (_segmentsSinceAck >= TcpConstants.AckEverySegments)
            {
                // Inside a received batch, one ACK at its end covers it all (what GRO gives Linux):
                // half the packets each way at full speed, with a cap on how much one ACK covers.
                // OnBatchEnd sends it unless a data segment carries it first.
                bool deferred = _segmentsSinceAck < TcpConstants.MaxAckStretchSegments
                    && (_ackDeferred || (_ackDeferred = TransmitBatch.TryDefer(this)));
                _ackNow |= !deferred;
            }

            if (_tsOk && options.HasTimestamps && options.TimestampEcho != 0)
            {
                uint elapsed = TimestampNow(now) - options.TimestampEcho;
                if (elapsed < 60_000)
                {
                    _rcvRtt = TimeSpan.FromMilliseconds(Math.Max(1, elapsed));
                }
            }

            GrowReceiveBufferIfNeeded(advanced, now);
            if (_readWaiting)
            {
                _readWaiting = false;
                _readSignal.Set();
            }
        }
    }

    /// <summary>
    /// Receive-buffer autotuning: when the sender delivered at least half the buffer within one
    /// receiver-side RTT, the window limits it, so the buffer doubles (up to the option's maximum).
    /// </summary>
    private void GrowReceiveBufferIfNeeded(int delivered, TimeSpan now)
    {
        _rcvSpaceBytes += delivered;
        if (now - _rcvSpaceStart < _rcvRtt)
        {
            if (_rcvSpaceBytes * 2 < _recvBuffer.Capacity)
            {
                return;
            }
        }
        else if (_rcvSpaceBytes * 2 < _recvBuffer.Capacity)
        {
            _rcvSpaceStart = now;
            _rcvSpaceBytes = 0;
            return;
        }

        if (_recvBuffer.Capacity < _recvBuffer.MaxCapacity && _recvBuffer.Grow(Math.Min(_recvBuffer.MaxCapacity, _recvBuffer.Capacity * 2)))
        {
            Counters.ReceiveBufferGrowths++;
        }

        _rcvSpaceStart = now;
        _rcvSpaceBytes = 0;
    }

    private void TryConsumeFin(TimeSpan now)
    {
        if (!_hasPendingFin || _finReceived || _pendingFinSeq != _rcvNxt)
        {
            return;
        }

        _hasPendingFin = false;
        _finReceived = true;
        _rcvNxt += 1;
        _ackNow = true;
        if (_readWaiting)
        {
            _readWaiting = false;
            _readSignal.Set();
        }

        switch (_state)
        {
            case TcpState.Established:
                _state = TcpState.CloseWait;
                break;
            case TcpState.FinWait1:
                if (FinAcked)
                {
                    SendAck(now);
                    EnterTimeWait(now);
                }
                else
                {
                    _state = TcpState.Closing;
                }

                break;
            case TcpState.FinWait2:
                SendAck(now);
                EnterTimeWait(now);
                break;
        }
    }

    private void OnResetReceived(TimeSpan now)
    {
        Counters.ResetsReceived++;
        switch (_state)
        {
            case TcpState.SynReceived when _listener is not null:
                Close(now); // back to LISTEN for a passive open: simply forget the attempt
                break;
            case TcpState.SynReceived:
                Fail(SocketError.ConnectionRefused, now);
                break;
            case TcpState.Closing or TcpState.LastAck or TcpState.TimeWait:
                Close(now);
                break;
            default:
                Fail(SocketError.ConnectionReset, now);
                break;
        }
    }

    /// <summary>An ICMP destination-unreachable about this connection arrived (hard error only while connecting, RFC 1122 4.2.3.9).</summary>
    public void OnUnreachable(SocketError error)
    {
        lock (_sync)
        {
            if (_state == TcpState.SynSent)
            {
                Fail(error, _stack.Now);
            }
        }
    }

    // ================================================================== output

    /// <summary>The space left in the receive buffer beyond RCV.NXT (what the peer may send).</summary>
    private long ReceiveSpace() => _recvBuffer.Capacity - _recvBuffer.Count;

    /// <summary>Sends what the windows, Nagle and the loss-recovery state allow.</summary>
    private void TrySend(TimeSpan now)
    {
        if (_state is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck))
        {
            return;
        }

        if (_sndUna == _sndMax && _lastSent != default && now - _lastSent > _rtt.Rto)
        {
            _cc.OnIdle(now - _lastSent, _rtt.Rto); // RFC 5681 4.1 restart window
        }

        bool sentAny = false;
        for (int guard = 0; guard < 100_000; guard++)
        {
            long cwnd = _cc.CongestionWindow + (_inRecovery && !_sackOk ? _renoInflation : 0);
            if (_inRecovery && _sackOk)
            {
                var lostBelow = _timeoutRepair ? _recoveryPoint : EarlyRetransmitBoundary();
                long pipe = _scoreboard.Pipe(_sndUna, _sndMax, _highRxt, _smss, lostBelow);
                if (cwnd - pipe < _smss && !(_forceSend && pipe == 0))
                {
                    break;
                }

                if (_scoreboard.TryNextSegment(_sndUna, _highRxt, _smss, false, lostBelow, out var start, out int length)
                    || (!CanSendNew(cwnd, pipe, now) && _scoreboard.TryNextSegment(_sndUna, _highRxt, _smss, true, lostBelow, out start, out length)))
                {
                    RetransmitFrom(start, length, now);
                    RecordRetransmission(start, length);
                    if (start + (length - 1) > _highRxt)
                    {
                        _highRxt = start + (length - 1);
                    }

                    sentAny = true;
                    continue;
                }

                if (!TrySendNew(cwnd, pipe, now))
                {
                    break;
                }

                sentAny = true;
                continue;
            }

            if (!TrySendNew(cwnd, _sndNxt - _sndUna, now))
            {
                break;
            }

            sentAny = true;
        }

        _forceSend = false;
        var dataEnd = _sndBufStart + _sendBuffer.Count;
        bool pending = dataEnd > _sndNxt || (_finQueued && !_finSent);
        if (pending && _sndNxt == _sndUna && !sentAny && _persistDeadline == Never && _rtoDeadline == Never)
        {
            // Nothing in flight to bring an ACK back, yet data waits (zero window, or held back by
            // Nagle/SWS): the persist timer probes the window or overrides the hold (RFC 9293 3.8.6.1).
            _persistDeadline = now + PersistInterval();
        }
    }

    private TimeSpan PersistInterval()
    {
        var interval = _rtt.Rto * (1L << Math.Min(_persistBackoff, 16));
        return interval > TcpConstants.MaxPersist ? TcpConstants.MaxPersist : interval;
    }

    private bool CanSendNew(long cwnd, long pipe, TimeSpan now)
    {
        _ = now;
        var dataEnd = _sndBufStart + _sendBuffer.Count;
        return dataEnd > _sndNxt && (_sndUna + (int)Math.Min(_sndWnd, int.MaxValue)) > _sndNxt && cwnd - pipe >= _smss;
    }

    /// <summary>Sends one segment from SND.NXT if allowed (new data, data again after a timeout, or the FIN).</summary>
    private bool TrySendNew(long cwnd, long pipe, TimeSpan now)
    {
        var dataEnd = _sndBufStart + _sendBuffer.Count;
        int unsent = Math.Max(0, dataEnd - _sndNxt);
        bool finDue = _finQueued && (!_finSent || _sndNxt <= _finSeq);
        long usable = _sndWnd - (_sndNxt - _sndUna);
        long room = cwnd - pipe;
        int length = (int)Math.Max(0, Math.Min(Math.Min(unsent, _smss), Math.Min(usable, room)));
        if (length == 0)
        {
            if (unsent == 0 && finDue && _sndNxt == dataEnd && (room > 0 || _forceSend))
            {
                SendData(_sndNxt, 0, TcpFlags.Fin | TcpFlags.Ack, now);
                return true;
            }

            return false;
        }

        bool retransmission = _sndNxt < _sndMax;
        bool all = length == unsent;
        bool canSend = length == _smss
            || retransmission
            || _forceSend
            || (all && (_noDelay || _sndNxt == _sndUna || finDue))
            || (_maxSndWnd > 0 && length >= _maxSndWnd / 2);
        if (!canSend)
        {
            return false;
        }

        var flags = TcpFlags.Ack;
        if (all)
        {
            flags |= TcpFlags.Psh;
            if (finDue)
            {
                flags |= TcpFlags.Fin;
            }
        }

        SendData(_sndNxt, length, flags, now);
        return true;
    }

    /// <summary>Sends data (and maybe FIN) at <paramref name="seq"/> = SND.NXT and advances SND.NXT.</summary>
    private void SendData(SeqNumber seq, int length, TcpFlags flags, TimeSpan now)
    {
        bool isNew = seq >= _sndMax;
        EmitSegment(seq, flags, length, now);
        Counters.SegmentsSent++;
        if (isNew && length > 0 && !_rttTiming)
        {
            _rttTiming = true;
            _rttSeq = seq;
            _rttStart = now;
        }

        if (!isNew)
        {
            Counters.Retransmissions++;
        }

        _sndNxt = seq + length;
        if ((flags & TcpFlags.Fin) != 0)
        {
            _finSent = true;
            _finSeq = _sndNxt;
            _sndNxt += 1;
        }

        if (_sndNxt > _sndMax)
        {
            _sndMax = _sndNxt;
        }

        if (_rtoDeadline == Never)
        {
            _rtoDeadline = now + _rtt.Rto;
        }

        if (isNew)
        {
            // RFC 8985 7.2: (re)started after new data, once this segment counts as outstanding.
            ScheduleProbe(now);
        }
    }

    /// <summary>Retransmits <paramref name="length"/> bytes from <paramref name="start"/> (below SND.MAX) without moving SND.NXT.</summary>
    private void RetransmitFrom(SeqNumber start, int length, TimeSpan now)
    {
        var dataEnd = _sndBufStart + _sendBuffer.Count;
        var flags = TcpFlags.Ack;
        if (start >= dataEnd)
        {
            if (_finSent)
            {
                EmitSegment(_finSeq, TcpFlags.Fin | TcpFlags.Ack, 0, now);
                Counters.Retransmissions++;
            }

            return;
        }

        length = Math.Min(length, dataEnd - start);
        if (length <= 0)
        {
            return;
        }

        if (start + length == dataEnd && _finSent)
        {
            flags |= TcpFlags.Fin;
        }

        EmitSegment(start, flags, length, now);
        Counters.Retransmissions++;
        Counters.SegmentsSent++;
        if (_rtoDeadline == Never)
        {
            _rtoDeadline = now + _rtt.Rto;
        }
    }

    private void SendSyn(TimeSpan now, bool withAck)
    {
        _rttStart = now;
        var flags = withAck ? TcpFlags.Syn | TcpFlags.Ack : TcpFlags.Syn;
        var options = TcpOptions.None;
        options.MaxSegmentSize = (ushort)Math.Min(65535, _stack.Mtu - TcpConstants.Ipv4TcpHeaders);
        if (!withAck)
        {
            options.WindowScale = _rcvWndShift;
            options.SackPermitted = true;
            options.HasTimestamps = true;
            options.TimestampValue = TimestampNow(now);
        }
        else
        {
            // RFC 7323 2.2: in a SYN-ACK only when the SYN offered it.
            if (_wsOk)
            {
                options.WindowScale = _rcvWndShift;
            }

            options.SackPermitted = _sackOk;
            if (_tsOk)
            {
                options.HasTimestamps = true;
                options.TimestampValue = TimestampNow(now);
                options.TimestampEcho = _tsRecent;
            }
        }

        ushort window = (ushort)Math.Min(65535, ReceiveSpace());
        _rcvAdvEdge = withAck ? _rcvNxt + window : _rcvAdvEdge;
        BuildAndSend(_iss, withAck ? _rcvNxt : default, flags, window, options, 0, now);
        if (withAck)
        {
            _lastAckSent = _rcvNxt; // Last.ACK.sent of RFC 7323 4.3, so the handshake's ACK updates TS.Recent
        }

        Counters.SegmentsSent++;
    }

    /// <summary>A pure ACK now (also a window update), and no delayed ACK pending afterwards.</summary>
    private void SendAck(TimeSpan now)
    {
        if (_state is TcpState.Closed or TcpState.SynSent)
        {
            return;
        }

        EmitSegment(_sndMax, TcpFlags.Ack, 0, now); // SND.MAX: after a go-back-N rewind SND.NXT may sit below what the peer already holds, and it would drop the ACK as old
    }

    /// <summary>A control segment (RST, or RST+ACK) with the given sequence number.</summary>
    private void SendControl(SeqNumber seq, TcpFlags flags, TimeSpan now)
    {
        var options = TcpOptions.None;
        BuildAndSend(seq, (flags & TcpFlags.Ack) != 0 ? _rcvNxt : default, flags, 0, options, 0, now);
        if ((flags & TcpFlags.Rst) != 0)
        {
            Counters.ResetsSent++;
        }
    }

    /// <summary>ACK at once when something asked for it; otherwise leave a delayed ACK pending.</summary>
    private void FlushAck(TimeSpan now)
    {
        if (_ackNow)
        {
            SendAck(now);
        }
        else if (_segmentsSinceAck > 0 && _ackDeadline == Never)
        {
            _ackDeadline = now + TcpConstants.DelayedAck;
        }
    }

    /// <summary>A data or ACK segment of a synchronized connection: timestamps, SACK blocks, current window.</summary>
    private void EmitSegment(SeqNumber seq, TcpFlags flags, int length, TimeSpan now)
    {
        var options = TcpOptions.None;
        if (_tsOk)
        {
            options.HasTimestamps = true;
            options.TimestampValue = TimestampNow(now);
            options.TimestampEcho = _tsRecent;
        }

        bool sackPending = _sackOk && !_assembler.IsEmpty;
        if (sackPending && length <= _smss - 36)
        {
            sackPending = false;
            int count = _assembler.GetRanges(_rangeScratch.AsSpan(0, _tsOk ? 3 : 4));
            for (int i = 0; i < count; i++)
            {
                _sackScratch[i] = new SackBlock((_rcvNxt + _rangeScratch[i].Start).Value, (_rcvNxt + _rangeScratch[i].End).Value);
            }

            options.SetSackBlocks(_sackScratch.AsSpan(0, count));
        }

        ushort window = AdvertiseWindow();
        BuildAndSend(seq, _rcvNxt, flags, window, options, length, now);
        if ((flags & TcpFlags.Ack) != 0)
        {
            _lastAckSent = _rcvNxt;
        }

        // A full data segment has no room for SACK blocks: while data is out of order the ACK still
        // owed goes out as its own segment (FlushAck). Otherwise the peer learns of no hole, and
        // since its data carrying our ACKs is no duplicate ACK, it could only repair loss by timeout.
        if ((flags & TcpFlags.Ack) != 0 && !sackPending)
        {
            _segmentsSinceAck = 0;
            _ackDeadline = Never;
            _ackNow = false;
        }
    }

    /// <summary>
    /// The window field to send, applying receiver silly-window avoidance (RFC 9293 3.8.6.2.2: the
    /// right edge moves only by min(buffer/2, MSS) or more) and never shrinking the window.
    /// </summary>
    private ushort AdvertiseWindow()
    {
        var edge = _rcvNxt + (int)Math.Min(ReceiveSpace(), int.MaxValue);
        if (_rcvAdvEdge >= _rcvNxt && edge - _rcvAdvEdge < Math.Min(_recvBuffer.Capacity / 2, _mss))
        {
            edge = SeqNumber.Max(_rcvAdvEdge, _rcvNxt);
        }

        long window = Math.Min((long)(edge - _rcvNxt) >> _rcvWndShift, 65535);
        var advertised = _rcvNxt + (int)(window << _rcvWndShift);
        if (advertised > _rcvAdvEdge)
        {
            _rcvAdvEdge = advertised;
        }

        return (ushort)window;
    }

    private void BuildAndSend(SeqNumber seq, SeqNumber ack, TcpFlags flags, ushort window, in TcpOptions options, int length, TimeSpan now)
    {
        int headerLength = TcpHeader.GetHeaderLength(options);
        var packet = _stack.Pool.Rent();
        int tcpLength = headerLength + length;
        packet.Length = Ipv4Packet.MinHeaderLength + tcpLength;
        var tcp = packet.Span[Ipv4Packet.MinHeaderLength..];
        if (length > 0)
        {
            _sendBuffer.Peek(seq - _sndBufStart, tcp.Slice(headerLength, length));
        }

        new TcpHeader(Tuple.LocalPort, Tuple.RemotePort, seq.Value, ack.Value, flags, window).Emit(tcp, options);
        TcpSegment.FillChecksumIpv4(tcp, Tuple.LocalAddress, Tuple.RemoteAddress);
        _lastSent = now;
        _stack.SendSegment(packet, Tuple.RemoteAddress, tcpLength);
    }

    private uint TimestampNow(TimeSpan now) => unchecked((uint)(long)now.TotalMilliseconds + _tsOffset);

    // ================================================================== timers

    private void ArmTimer(TimeSpan now)
    {
        var next = _rtoDeadline;
        if (_ackDeadline < next)
        {
            next = _ackDeadline;
        }

        if (_persistDeadline < next)
        {
            next = _persistDeadline;
        }

        if (_probeDeadline < next)
        {
            next = _probeDeadline;
        }

        if (_keepaliveDeadline < next)
        {
            next = _keepaliveDeadline;
        }

        if (_closeDeadline < next)
        {
            next = _closeDeadline;
        }

        if (next == Never || next >= _armedDeadline || _removed)
        {
            return;
        }

        _armedDeadline = next;
        _timer ??= _stack.Time.CreateTimer(TimerFired, this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        var due = next - now;
        _timer.Change(due > TimeSpan.Zero ? due : TimeSpan.FromTicks(1), Timeout.InfiniteTimeSpan);
    }

    private void OnTimer()
    {
        lock (_sync)
        {
            if (_removed)
            {
                return;
            }

            var now = _stack.Now;
            _armedDeadline = Never;
            if (_closeDeadline <= now)
            {
                _closeDeadline = Never;
                if (_state is TcpState.TimeWait or TcpState.FinWait2)
                {
                    Close(now);
                    return;
                }
            }

            if (_rtoDeadline <= now)
            {
                _rtoDeadline = Never;
                OnRetransmissionTimeout(now);
                if (_state == TcpState.Closed)
                {
                    return;
                }
            }

            if (_persistDeadline <= now)
            {
                _persistDeadline = Never;
                OnPersistTimeout(now);
            }

            if (_probeDeadline <= now)
            {
                _probeDeadline = Never;
                OnProbeTimeout(now);
            }

            if (_keepaliveDeadline <= now)
            {
                _keepaliveDeadline = Never;
                OnKeepaliveTimeout(now);
                if (_state == TcpState.Closed)
                {
                    return;
                }
            }

            if (_ackDeadline <= now)
            {
                _ackDeadline = Never;
                SendAck(now);
            }

            ArmTimer(now);
        }
    }

    /// <summary>RFC 6298 5.4–5.7 with RFC 5681's loss window; SYNs and SYN-ACKs are retried with the same backoff.</summary>
    private void OnRetransmissionTimeout(TimeSpan now)
    {
        Counters.Timeouts++;
        switch (_state)
        {
            case TcpState.SynSent:
                if (++_retries > TcpConstants.MaxSynRetries)
                {
                    Fail(SocketError.TimedOut, now);
                    return;
                }

                _rtt.Backoff();
                SendSyn(now, withAck: false);
                _rtoDeadline = now + _rtt.Rto;
                return;
            case TcpState.SynReceived:
                if (++_retries > TcpConstants.MaxSynAckRetries)
                {
                    if (_listener is not null)
                    {
                        Close(now);
                    }
                    else
                    {
                        Fail(SocketError.TimedOut, now);
                    }

                    return;
                }

                _rtt.Backoff();
                SendSyn(now, withAck: true);
                _rtoDeadline = now + _rtt.Rto;
                return;
        }

        if (_sndUna == _sndMax)
        {
            return;
        }

        if (++_retries > TcpConstants.MaxRetries)
        {
            SendControl(_sndMax, TcpFlags.Rst | TcpFlags.Ack, now);
            Fail(SocketError.TimedOut, now);
            return;
        }

        _cc.OnRetransmissionTimeout(_sndMax - _sndUna, now);
        _rtt.Backoff();
        _probeDeadline = Never;
        _renoInflation = 0;
        _dupAcks = 0;
        _rttTiming = false;
        _retransmitCount = 0;
        _recoveryPoint = _sndMax; // no fast recovery for the data outstanding now (RFC 6582 "recover")
        _forceSend = true;
        if (_sackOk && _retries <= TcpConstants.TimeoutsBeforeForgettingSacks)
        {
            // With SACK the timeout repairs only the holes (as Linux's loss state does): everything
            // unSACKed below SND.MAX counts as lost and goes out in order under the slow-start
            // window, skipping what the receiver holds; a retransmission lost again is caught by
            // DetectLostRetransmissions instead of costing another timeout.
            _inRecovery = true;
            _timeoutRepair = true;
            _highRxt = _sndUna - 1;
        }
        else
        {
            // Without SACK, or when timeouts repeat (the receiver may have discarded what it
            // SACKed, RFC 2018 section 8): forget the SACKs and go back N.
            _inRecovery = false;
            _timeoutRepair = false;
            _scoreboard.Clear();
            _sndNxt = _sndUna;
        }

        TrySend(now);
        _rtoDeadline = now + _rtt.Rto;
    }

    private void OnPersistTimeout(TimeSpan now)
    {
        var dataEnd = _sndBufStart + _sendBuffer.Count;
        bool pending = dataEnd > _sndNxt || (_finQueued && !_finSent);
        if (!pending || _state is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.LastAck or TcpState.Closing))
        {
            return;
        }

        if (_sndWnd - (_sndNxt - _sndUna) <= 0)
        {
            // Zero-window probe: a segment below SND.UNA that the receiver must answer with an ACK
            // carrying its current window (as Linux's tcp_xmit_probe_skb does).
            Counters.WindowProbes++;
            EmitSegment(_sndUna - 1, TcpFlags.Ack, 0, now);
            _persistBackoff++;
            _persistDeadline = now + PersistInterval();
            return;
        }

        // The window is open but Nagle or sender SWS held the data back with nothing in flight: send it.
        _forceSend = true;
        TrySend(now);
    }

    private void StartKeepalive(TimeSpan now)
    {
        if (_options.KeepAliveTime is { } idle && _state is TcpState.Established or TcpState.CloseWait)
        {
            _keepaliveDeadline = now + idle;
        }
    }

    private void OnKeepaliveTimeout(TimeSpan now)
    {
        if (_options.KeepAliveTime is not { } idle || _state is not (TcpState.Established or TcpState.CloseWait))
        {
            return;
        }

        var due = _lastReceived + idle + (_options.KeepAliveInterval * _keepaliveProbes);
        if (now < due)
        {
            _keepaliveDeadline = due;
            return;
        }

        if (_keepaliveProbes >= _options.KeepAliveProbes)
        {
            SendControl(_sndMax, TcpFlags.Rst | TcpFlags.Ack, now);
            Fail(SocketError.TimedOut, now);
            return;
        }

        // A probe is a segment one below SND.UNA with no data: the peer must ACK it (RFC 1122 4.2.3.6).
        _keepaliveProbes++;
        Counters.KeepaliveProbes++;
        EmitSegment(_sndUna - 1, TcpFlags.Ack, 0, now);
        _keepaliveDeadline = now + _options.KeepAliveInterval;
    }

    // ================================================================== closing

    private void EnterTimeWait(TimeSpan now)
    {
        _state = TcpState.TimeWait;
        _rtoDeadline = Never;
        _persistDeadline = Never;
        _keepaliveDeadline = Never;
        _ackDeadline = Never;
        _closeDeadline = now + TcpConstants.TimeWait;
        ReleaseBuffersIfDrained();
        WakeAll();
    }

    /// <summary>Ends the connection normally: forgets it and releases its buffers.</summary>
    private void Close(TimeSpan now)
    {
        _ = now;
        _state = TcpState.Closed;
        Remove();
        WakeAll();
    }

    /// <summary>Ends the connection with an error every pending and later call reports.</summary>
    private void Fail(SocketError error, TimeSpan now)
    {
        _ = now;
        if (_error == SocketError.Success)
        {
            _error = error;
        }

        _state = TcpState.Closed;
        Remove();
        _connected?.TrySetException(new SocketException((int)error, DialMessage(error)));
        WakeAll();
    }

    private string DialMessage(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => $"Connection refused by {TcpStack.Format(Tuple.RemoteAddress)}:{Tuple.RemotePort} (it answered with RST: nothing listens there).",
        SocketError.TimedOut => $"Connection to {TcpStack.Format(Tuple.RemoteAddress)}:{Tuple.RemotePort} timed out.",
        SocketError.HostUnreachable => $"{TcpStack.Format(Tuple.RemoteAddress)} is unreachable.",
        SocketError.ConnectionReset => $"The connection to {TcpStack.Format(Tuple.RemoteAddress)}:{Tuple.RemotePort} was reset by the peer.",
        _ => $"The connection to {TcpStack.Format(Tuple.RemoteAddress)}:{Tuple.RemotePort} failed: {error}.",
    };

    private void Remove()
    {
        if (_removed)
        {
            return;
        }

        _removed = true;
        _rtoDeadline = _ackDeadline = _persistDeadline = _probeDeadline = _keepaliveDeadline = _closeDeadline = Never;
        _timer?.Dispose();
        _timer = null;
        _stack.Remove(this);
        _listener?.OnConnectionGone(this);
        if (_recvBuffer.Count == 0)
        {
            _recvBuffer.Trim();
        }

        _sendBuffer.Discard(_sendBuffer.Count);
        _sendBuffer.Trim();
        _assembler.Clear();
        _scoreboard.Clear();
    }

    private void ReleaseBuffersIfDrained()
    {
        if (_sendBuffer.Count == 0)
        {
            _sendBuffer.Trim();
        }

        if (_recvBuffer.Count == 0 && _assembler.IsEmpty)
        {
            _recvBuffer.Trim();
        }
    }

    private void WakeAll()
    {
        if (_readWaiting)
        {
            _readWaiting = false;
            _readSignal.Set();
        }

        if (_writeWaiting)
        {
            _writeWaiting = false;
            _writeSignal.Set();
        }
    }

    // ================================================================== application side

    /// <summary>Reads received bytes; 0 at the end of the stream (the peer's FIN). One reader at a time.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // no allocation per read or write that has to wait
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            lock (_sync)
            {
                if (_recvBuffer.Count > 0)
                {
                    if (buffer.Length == 0)
                    {
                        return 0;
                    }

                    int n = _recvBuffer.Read(buffer.Span);
                    AfterApplicationRead(_stack.Now);
                    return n;
                }

                if (_finReceived)
                {
                    return 0;
                }

                if (_error != SocketError.Success)
                {
                    throw StreamError(_error);
                }

                ObjectDisposedException.ThrowIf(_appClosed || _state == TcpState.Closed, typeof(MeshTcpStream));

                if (_readWaiting)
                {
                    throw new InvalidOperationException("Another read is already in progress on this connection.");
                }

                cancellationToken.ThrowIfCancellationRequested();
                _readSignal.Reset();
                _readWaiting = true;
            }

            await WaitAsync(_readSignal, isRead: true, cancellationToken).ConfigureAwait(false);
        }
    }

    private void AfterApplicationRead(TimeSpan now)
    {
        if (_state is TcpState.Closed or TcpState.TimeWait or TcpState.SynReceived or TcpState.SynSent)
        {
            return;
        }

        // Window update when the window the peer knows has become small relative to what is free now.
        long known = _rcvAdvEdge - _rcvNxt;
        long free = ReceiveSpace();
        if (!_finReceived && free - known >= Math.Max(known, Math.Min(_recvBuffer.Capacity / 2, (long)_mss)))
        {
            SendAck(now);
            ArmTimer(now);
        }

        if (_recvBuffer.Count == 0 && _assembler.IsEmpty)
        {
            _recvBuffer.Trim();
        }
    }

    /// <summary>The end of a received batch: the ACK deferred for it, unless something else carried it already.</summary>
    void ITransmitBatchCompletion.OnBatchEnd()
    {
        lock (_sync)
        {
            _ackDeferred = false;
            if (_removed || _segmentsSinceAck == 0)
            {
                return;
            }

            var now = _stack.Now;
            SendAck(now);
            ArmTimer(now);
        }
    }

    /// <summary>Queues all of <paramref name="data"/> for sending, waiting while the send buffer is full.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))] // no allocation per read or write that has to wait
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (true)
        {
            // The segments this write releases leave in one batch once the lock is let go.
            TransmitBatch.Begin();
            try
            {
                lock (_sync)
                {
                    if (_error != SocketError.Success)
                    {
                        throw StreamError(_error);
                    }

                    ObjectDisposedException.ThrowIf(_appClosed, typeof(MeshTcpStream));

                    if (_finQueued || _state is not (TcpState.Established or TcpState.CloseWait))
                    {
                        throw new IOException("The connection's sending side is shut down.", new SocketException((int)SocketError.Shutdown));
                    }

                    if (data.Length == 0)
                    {
                        return;
                    }

                    if (_sendBuffer.Free < data.Length && _sendBuffer.Capacity < _sendBuffer.MaxCapacity)
                    {
                        long target = Math.Max(2 * _cc.CongestionWindow, Math.Max(_sndWnd, (long)_sendBuffer.Count + data.Length));
                        int capacity = _sendBuffer.Capacity;
                        while (capacity < target && capacity < _sendBuffer.MaxCapacity)
                        {
                            capacity *= 2;
                        }

                        if (capacity > _sendBuffer.Capacity)
                        {
                            _sendBuffer.Grow(Math.Min(capacity, _sendBuffer.MaxCapacity));
                        }
                    }

                    int written = _sendBuffer.Write(data.Span);
                    data = data[written..];
                    var now = _stack.Now;
                    if (written > 0)
                    {
                        Counters.BytesSent += written;
                        TrySend(now);
                        ArmTimer(now);
                    }

                    if (data.Length == 0)
                    {
                        return;
                    }

                    cancellationToken.ThrowIfCancellationRequested();
                    _writeNeed = Math.Min(data.Length, Math.Max(1, _sendBuffer.Capacity / 4));
                    _writeSignal.Reset();
                    _writeWaiting = true;
                }
            }
            finally
            {
                TransmitBatch.End();
            }

            await WaitAsync(_writeSignal, isRead: false, cancellationToken).ConfigureAwait(false);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))] // no allocation per read or write that has to wait
    private async ValueTask WaitAsync(TcpSignal signal, bool isRead, CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            await signal.WaitAsync().ConfigureAwait(false);
            return;
        }

        var registration = cancellationToken.UnsafeRegister(
            isRead ? static (s, ct) => ((TcpConnection)s!).CancelWait(true, ct) : static (s, ct) => ((TcpConnection)s!).CancelWait(false, ct),
            this);
        try
        {
            await signal.WaitAsync().ConfigureAwait(false);
        }
        finally
        {
            await registration.DisposeAsync().ConfigureAwait(false);
        }
    }

    private void CancelWait(bool isRead, CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            if (isRead && _readWaiting)
            {
                _readWaiting = false;
                _readSignal.Fail(new OperationCanceledException(cancellationToken));
            }
            else if (!isRead && _writeWaiting)
            {
                _writeWaiting = false;
                _writeSignal.Fail(new OperationCanceledException(cancellationToken));
            }
        }
    }

    /// <summary>Half-close: the FIN follows the data already queued. Reading goes on.</summary>
    public void ShutdownSend()
    {
        lock (_sync)
        {
            if (_error != SocketError.Success)
            {
                throw StreamError(_error);
            }

            if (_finQueued)
            {
                return;
            }

            var now = _stack.Now;
            switch (_state)
            {
                case TcpState.Established:
                    _state = TcpState.FinWait1;
                    break;
                case TcpState.CloseWait:
                    _state = TcpState.LastAck;
                    break;
                default:
                    return;
            }

            _finQueued = true;
            _forceSend = true;
            TrySend(now);
            ArmTimer(now);
            if (_writeWaiting)
            {
                _writeWaiting = false;
                _writeSignal.Set();
            }
        }
    }

    /// <summary>The application is done with the connection (Dispose): FIN after queued data, or RST if received data was never read.</summary>
    public void CloseFromApplication()
    {
        lock (_sync)
        {
            if (_appClosed)
            {
                return;
            }

            _appClosed = true;
            var now = _stack.Now;
            if (_state is TcpState.SynSent or TcpState.SynReceived)
            {
                Close(now);
                return;
            }

            if (_state == TcpState.Closed || _state == TcpState.TimeWait)
            {
                WakeAll();
                return;
            }

            if (_recvBuffer.Count > 0)
            {
                // RFC 2525 2.17: closing with unread data resets, so the peer knows it was not consumed.
                SendControl(_sndMax, TcpFlags.Rst | TcpFlags.Ack, now);
                Fail(SocketError.ConnectionAborted, now);
                return;
            }

            if (!_finQueued)
            {
                _finQueued = true;
                _forceSend = true;
                _state = _state == TcpState.CloseWait ? TcpState.LastAck : _state == TcpState.Established ? TcpState.FinWait1 : _state;
                TrySend(now);
            }

            if (_state == TcpState.FinWait2)
            {
                _closeDeadline = now + TcpConstants.FinWait2Timeout;
            }

            WakeAll();
            ArmTimer(now);
        }
    }

    /// <summary>Resets the connection at once (RST) and discards its data.</summary>
    public void Abort()
    {
        lock (_sync)
        {
            var now = _stack.Now;
            if (_state is not (TcpState.Closed or TcpState.TimeWait or TcpState.SynSent))
            {
                SendControl(_sndMax, TcpFlags.Rst | TcpFlags.Ack, now);
            }

            if (_state != TcpState.Closed)
            {
                Fail(SocketError.ConnectionAborted, now);
            }

            _appClosed = true;
        }
    }

    /// <summary>The node is going away: fail everything without sending.</summary>
    public void OnStackDisposed()
    {
        lock (_sync)
        {
            if (_state != TcpState.Closed)
            {
                Fail(SocketError.OperationAborted, _stack.Now);
            }
        }
    }

    private static IOException StreamError(SocketError error) => error switch
    {
        SocketError.ConnectionReset => new IOException("The connection was reset by the peer.", new SocketException((int)error)),
        SocketError.ConnectionAborted => new IOException("The connection was aborted.", new SocketException((int)error)),
        SocketError.TimedOut => new IOException("The connection timed out (no acknowledgment from the peer).", new SocketException((int)error)),
        SocketError.OperationAborted => new IOException("The node was disposed.", new SocketException((int)error)),
        _ => new IOException($"The connection failed: {error}.", new SocketException((int)error)),
    };

    private static int WindowShiftFor(int maxBuffer)
    {
        int shift = 0;
        while (shift < 14 && (65535L << shift) < maxBuffer)
        {
            shift++;
        }

        return shift;
    }

    private static int RoundUpToPowerOfTwo(int value) => (int)Math.Min(1 << 30, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)value));
}

/// <summary>Counters of one connection (written under its lock, read racily for statistics and tests).</summary>
internal sealed class TcpConnectionCounters
{
    public long SegmentsSent;
    public long SegmentsReceived;
    public long BytesSent;
    public long BytesReceived;
    public long Retransmissions;
    public long LostRetransmissions;
    public long TailLossProbes;
    public long FastRetransmits;
    public long Timeouts;
    public long DuplicateAcks;
    public long WindowProbes;
    public long KeepaliveProbes;
    public long ResetsSent;
    public long ResetsReceived;
    public long ReceiveBufferGrowths;
    public bool Established;
}

/// <summary>A retransmission made during SACK recovery: its range, and SND.MAX when it was sent.</summary>
internal readonly record struct Retransmission(SeqNumber Start, int Length, SeqNumber SentBefore);
