using System.Collections.Concurrent;
using System.Net;
using TunnelMesh.Net.Wire.Stun;

namespace TunnelMesh.Net.Transport;

/// <summary>
/// Learns the node's reflexive endpoint (its WireGuard UDP socket as a STUN server sees it, after
/// any NAT) with RFC 5389 binding requests sent from that same socket. Responses arrive on the
/// socket's receive path among the WireGuard messages: the device hands over what is not a
/// WireGuard message (<see cref="TryAccept"/>), so WireGuard traffic pays nothing for it.
/// </summary>
/// <remarks>
/// A query retransmits the same transaction every <c>timeout</c> up to <c>attempts</c> times
/// (RFC 5389 §7.2.1 keeps the id across retransmissions). A response counts only when its
/// transaction id is one in flight and it came from the server that was asked; anything else
/// that looks like STUN is dropped and counted as <see cref="DropReason.StunUnmatched"/>.
/// </remarks>
internal sealed class StunClient
{
    private readonly IDatagramTransport _transport;
    private readonly PacketBufferPool _pool;
    private readonly DropCounters _drops;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<StunTransactionId, Pending> _pending = new();
    private IPEndPoint? _reflexive;

    public StunClient(IDatagramTransport transport, PacketBufferPool pool, DropCounters drops, TimeProvider time)
    {
        _transport = transport;
        _pool = pool;
        _drops = drops;
        _time = time;
    }

    /// <summary>The last reflexive endpoint learned; null before the first answer.</summary>
    public IPEndPoint? ReflexiveEndpoint => Volatile.Read(ref _reflexive);

    /// <summary>Raised (on the receive thread) when a response reports an endpoint different from the last one.</summary>
    public event Action<IPEndPoint>? ReflexiveEndpointChanged;

    /// <summary>Sends a binding request to <paramref name="server"/> from the WireGuard socket and returns the endpoint it reports.</summary>
    /// <exception cref="TimeoutException">No response after <paramref name="attempts"/> × <paramref name="timeout"/>.</exception>
    public async Task<IPEndPoint> QueryAsync(IPEndPoint server, TimeSpan timeout, int attempts = 3, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentOutOfRangeException.ThrowIfLessThan(attempts, 1);
        var id = StunTransactionId.NewRandom();
        var pending = new Pending(Endpoint.FromIPEndPoint(server));
        _pending[id] = pending;
        try
        {
            for (int attempt = 0; attempt < attempts; attempt++)
            {
                Send(id, pending.Server);
                try
                {
                    return await pending.Answer.Task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    // Retransmit the same transaction.
                }
            }

            throw new TimeoutException($"The STUN server {server} did not answer {attempts} binding requests ({timeout.TotalSeconds:0.###} s apart).");
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>
    /// Takes a received datagram that is not a WireGuard message. True when it is STUN (consumed:
    /// an answer completes its query, anything else is counted); false to let the caller count it.
    /// Called on the receive thread; never throws.
    /// </summary>
    public bool TryAccept(ReadOnlySpan<byte> datagram, Endpoint source)
    {
        if (!StunMessage.IsStun(datagram))
        {
            return false;
        }

        if (!StunMessage.TryParse(datagram, out var message)
            || message.Type != StunSpec.BindingSuccess
            || message.Mapped is not { } mapped
            || !_pending.TryGetValue(message.TransactionId, out var pending)
            || pending.Server != source)
        {
            _drops.Increment(DropReason.StunUnmatched);
            return true;
        }

        var previous = Interlocked.Exchange(ref _reflexive, mapped);
        pending.Answer.TrySetResult(mapped);
        if (!mapped.Equals(previous))
        {
            ReflexiveEndpointChanged?.Invoke(mapped);
        }

        return true;
    }

    private void Send(StunTransactionId id, Endpoint server)
    {
        var buffer = _pool.Rent();
        try
        {
            buffer.Length = StunMessage.WriteBindingRequest(buffer.Available, id);
            buffer.Endpoint = server;
            _transport.Send([buffer]);
        }
        finally
        {
            buffer.Return();
        }
    }

    private sealed class Pending(Endpoint server)
    {
        public Endpoint Server { get; } = server;

        public TaskCompletionSource<IPEndPoint> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
