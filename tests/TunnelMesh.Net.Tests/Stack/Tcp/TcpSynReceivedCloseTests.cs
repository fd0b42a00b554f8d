using System.Net.Sockets;
using TunnelMesh.Net.Stack.Tcp;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Stack.Tcp;

/// <summary>
/// What the application can do to a connection in SYN-RECEIVED. RFC 9293's CLOSE in that state
/// (FIN, or FIN queued until ESTABLISHED) has no caller: a stream exists only for an ESTABLISHED
/// connection (a dial returns once established, a listener queues connections once established),
/// so <see cref="TcpConnection.CloseFromApplication"/> never meets SYN-RECEIVED. The reachable
/// paths are a dial given up during a simultaneous open (ABORT: RST) and a listener disposed with
/// half-open connections (their handshake's ACK is reset, as Linux resets it once the listener is gone).
/// </summary>
public sealed class TcpSynReceivedCloseTests
{
    private const ushort ServicePort = 80;
    private const uint PeerIss = 0xFFFF_FFF0;

    private static TcpOptions PeerSynOptions()
    {
        var options = TcpOptions.None;
        options.MaxSegmentSize = 1000;
        return options;
    }

    /// <summary>A dial that meets the peer's SYN: SYN-SENT, then SYN-RECEIVED with our SYN-ACK out.</summary>
    private static (Task<TcpConnection> Connect, Segment Syn) SimultaneousOpen(TcpHarness h, MeshTcpOptions options, CancellationToken cancellationToken)
    {
        var connect = h.Stack.Tcp.ConnectAsync(TcpHarness.PeerAddress, ServicePort, options, cancellationToken);
        var syn = h.Next();
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss, 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() });
        Assert.Equal(TcpState.SynReceived, h.Connection.State);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, h.Next().Flags);
        Assert.False(connect.IsCompleted);
        return (connect, syn);
    }

    private static void ExpectReset(TcpHarness h, uint seq, uint ack)
    {
        var rst = h.Next();
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(seq, rst.Seq);
        Assert.Equal(ack, rst.Ack);
        Assert.Empty(rst.Payload);
    }

    [Fact]
    public async Task A_dial_cancelled_in_syn_received_resets_the_peer_and_forgets_the_connection()
    {
        var h = new TcpHarness();
        using var cts = new CancellationTokenSource();
        var (connect, syn) = SimultaneousOpen(h, MeshTcpOptions.Default, cts.Token);
        var connection = h.Connection;

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connect);
        ExpectReset(h, syn.Seq + 1, PeerIss + 1); // RFC 9293 ABORT in SYN-RECEIVED: RST at SND.NXT
        Assert.Equal(TcpState.Closed, connection.State);
        Assert.Equal(0, h.ConnectionCount);

        // The peer's late SYN-ACK finds no connection: it is reset like any segment for a closed port.
        h.Deliver(new Segment(ServicePort, syn.SourcePort, PeerIss, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, 65535) { Options = PeerSynOptions() });
        Assert.Equal(TcpFlags.Rst, h.Next().Flags);
        h.Advance(TimeSpan.FromMinutes(5));
        h.AssertNothingSent();
    }

    [Fact]
    public async Task A_dial_that_times_out_in_syn_received_resets_the_peer()
    {
        var h = new TcpHarness();
        var timeout = TimeSpan.FromMilliseconds(500); // before the first SYN-ACK retransmission (1 s)
        var (connect, syn) = SimultaneousOpen(h, new MeshTcpOptions { ConnectTimeout = timeout }, CancellationToken.None);
        h.Advance(timeout);
        var timedOut = await Assert.ThrowsAsync<SocketException>(() => connect);
        Assert.Equal(SocketError.TimedOut, timedOut.SocketErrorCode);
        ExpectReset(h, syn.Seq + 1, PeerIss + 1);
        Assert.Equal(0, h.ConnectionCount);
        h.Advance(TimeSpan.FromMinutes(5));
        h.AssertNothingSent();
    }

    [Fact]
    public void A_listener_disposed_with_a_half_open_connection_resets_it_when_its_handshake_completes()
    {
        var h = new TcpHarness();
        var listener = h.Stack.Tcp.Listen(ServicePort, new MeshTcpListenerOptions());
        const ushort peerPort = 40000;
        h.Deliver(new Segment(peerPort, ServicePort, PeerIss, 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() });
        var synAck = h.Next();
        Assert.Equal(TcpState.SynReceived, h.Connection.State);

        listener.Stop();
        Assert.Equal(TcpState.SynReceived, h.Connection.State); // nobody can accept it any more, but the peer is not told yet

        // The peer's ACK completes the handshake: nobody will accept the connection, so it is reset.
        h.Deliver(new Segment(peerPort, ServicePort, PeerIss + 1, synAck.Seq + 1, TcpFlags.Ack, 65535));
        ExpectReset(h, synAck.Seq + 1, PeerIss + 1);
        Assert.Equal(0, h.ConnectionCount);

        // The port is closed: a new SYN is refused.
        h.Deliver(new Segment(peerPort + 1, ServicePort, PeerIss, 0, TcpFlags.Syn, 65535) { Options = PeerSynOptions() });
        var refused = h.Next();
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, refused.Flags);
        Assert.Equal(0, h.ConnectionCount);
    }
}
