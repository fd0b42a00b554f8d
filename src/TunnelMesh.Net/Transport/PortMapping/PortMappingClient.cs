using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using TunnelMesh.Net.Wire.PortMapping;

namespace TunnelMesh.Net.Transport.PortMapping;

/// <summary>A mapping a gateway granted: the protocol that got it, the external endpoint, its lifetime.</summary>
/// <param name="Protocol">PCP or NAT-PMP.</param>
/// <param name="External">The external address and port the gateway forwards to the internal port.</param>
/// <param name="Lifetime">How long the gateway keeps it (renew before it ends).</param>
/// <param name="Nonce">The PCP mapping nonce (renewals reuse it); default for NAT-PMP.</param>
internal sealed record PortMappingLease(MeshPortMappingProtocol Protocol, IPEndPoint External, TimeSpan Lifetime, PcpNonce Nonce);

/// <summary>A gateway answered a mapping request with an error result.</summary>
internal sealed class PortMappingRefusedException(MeshPortMappingProtocol protocol, int result)
    : Exception($"the gateway refused the {protocol} mapping (result code {result})")
{
    public MeshPortMappingProtocol Protocol { get; } = protocol;

    public int Result { get; } = result;
}

/// <summary>
/// Asks a gateway for a UDP port mapping with PCP (RFC 6887) and, where the gateway speaks only
/// its predecessor, NAT-PMP (RFC 6886). One request at a time over a UDP socket of its own (the
/// mapping names the internal port, so the request need not come from the mapped socket).
/// </summary>
/// <remarks>
/// <para>
/// Bounded: each exchange sends the request at most <see cref="Attempts"/> times, waiting
/// <see cref="FirstWait"/> and then twice as long after each (RFC 6887 §8.1.1 backs off the
/// same way, from a longer start); then it gives up.
/// </para>
/// <para>
/// Trust: only a datagram from the gateway's address and port 5351 that parses exactly and answers
/// the request in flight (opcode, and for PCP the nonce, protocol and internal port) is taken; any
/// other datagram is dropped and counted as <see cref="DropReason.PortMappingUnmatched"/>. A forged
/// answer must therefore come from on-path, where the gateway itself is. The server epoch
/// (RFC 6886 §3.6, RFC 6887 §8.5) is checked across answers: when it shows the gateway lost its
/// state (rebooted) it is counted in <see cref="GatewayRestarts"/> and <see cref="StateLost"/> is set
/// so the owner maps again at once.
/// </para>
/// </remarks>
internal sealed class PortMappingClient : IDisposable
{
    /// <summary>Sends of one request before giving up.</summary>
    public const int Attempts = 3;

    /// <summary>The wait after the first send (doubled after each resend: 250 + 500 + 1000 ms in all).</summary>
    public static readonly TimeSpan FirstWait = TimeSpan.FromMilliseconds(250);

    private readonly Socket _socket;
    private readonly IPEndPoint _gateway;
    private readonly SocketAddress _gatewayAddress;
    private readonly IPAddress _clientAddress;
    private readonly DropCounters _drops;
    private readonly TimeProvider _time;
    private readonly byte[] _send = new byte[PcpSpec.MaxLength];
    private readonly byte[] _receive = new byte[PcpSpec.MaxLength + 4]; // longer than any valid answer, so an over-long one is seen as such
    private readonly SocketAddress _source;
    private readonly UpnpIgdClient? _upnp;
    private uint _lastEpoch;
    private long _lastEpochAt;
    private bool _haveEpoch;
    private long _gatewayRestarts;

    /// <summary>A client over <paramref name="socket"/> (an unbound or bound IPv4 UDP socket it then owns) toward <paramref name="gateway"/>.</summary>
    /// <param name="socket">The socket requests go out on; bound to an ephemeral port here when unbound.</param>
    /// <param name="gateway">The gateway's address (the server port is 5351).</param>
    /// <param name="clientAddress">This host's address toward the gateway (PCP's client address field); learned from the route when null.</param>
    /// <param name="drops">Where unmatched datagrams are counted.</param>
    /// <param name="time">The clock.</param>
    /// <param name="upnpSockets">Makes the sockets for UPnP IGD (UDP for SSDP, TCP for HTTP), tried when neither PCP nor NAT-PMP answers; null: no UPnP.</param>
    public PortMappingClient(Socket socket, IPAddress gateway, IPAddress? clientAddress, DropCounters drops, TimeProvider time, Func<SocketType, Socket>? upnpSockets = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(gateway);
        _socket = socket;
        _gateway = new IPEndPoint(gateway, NatPmpSpec.ServerPort);
        _gatewayAddress = _gateway.Serialize();
        _drops = drops;
        _time = time;
        _source = new SocketAddress(socket.AddressFamily);
        if (!socket.IsBound)
        {
            socket.Bind(new IPEndPoint(IPAddress.Any, 0));
        }

        _clientAddress = clientAddress ?? LocalAddressToward(socket, _gateway);
        _upnp = upnpSockets is null ? null : new UpnpIgdClient(upnpSockets, gateway, _clientAddress, drops, time);
    }

    /// <summary>The gateway the requests go to (port 5351).</summary>
    public IPEndPoint Gateway => _gateway;

    /// <summary>Times the gateway's epoch showed it had lost its mappings.</summary>
    public long GatewayRestarts => Interlocked.Read(ref _gatewayRestarts);

    /// <summary>Set when an answer's epoch showed the gateway lost its state; the owner clears it after mapping again.</summary>
    public bool StateLost { get; set; }

    /// <summary>
    /// Asks for a mapping of UDP <paramref name="internalPort"/>: PCP first, NAT-PMP when the gateway
    /// answers PCP with "unsupported version" or not at all, then UPnP IGD (when enabled) when neither
    /// answers. A renewal passes the
    /// <paramref name="previous"/> lease, whose protocol, nonce and external port it asks for again.
    /// </summary>
    /// <returns>The lease, or null when no gateway answered either protocol.</returns>
    /// <exception cref="PortMappingRefusedException">The gateway answered with an error.</exception>
    public async Task<PortMappingLease?> MapAsync(ushort internalPort, TimeSpan lifetime, PortMappingLease? previous, CancellationToken cancellationToken)
    {
        uint seconds = (uint)Math.Clamp(lifetime.TotalSeconds, 1, uint.MaxValue);
        ushort suggested = (ushort)(previous?.External.Port ?? internalPort);
        if (previous?.Protocol == MeshPortMappingProtocol.Upnp && _upnp is not null)
        {
            return await _upnp.MapAsync(internalPort, lifetime, previous, cancellationToken).ConfigureAwait(false);
        }

        if (previous?.Protocol != MeshPortMappingProtocol.NatPmp)
        {
            var nonce = previous?.Nonce ?? PcpNonce.NewRandom();
            var pcp = await PcpMapAsync(internalPort, suggested, seconds, nonce, cancellationToken).ConfigureAwait(false);
            if (pcp.Lease is not null || pcp.Result is not (null or PcpSpec.ResultUnsupportedVersion))
            {
                return pcp.Lease ?? throw new PortMappingRefusedException(MeshPortMappingProtocol.Pcp, pcp.Result!.Value);
            }
        }

        var natPmp = await NatPmpMapAsync(internalPort, suggested, seconds, cancellationToken).ConfigureAwait(false);
        if (natPmp is null && _upnp is not null && previous?.Protocol != MeshPortMappingProtocol.NatPmp)
        {
            return await _upnp.MapAsync(internalPort, lifetime, null, cancellationToken).ConfigureAwait(false);
        }

        return natPmp;
    }

    /// <summary>Asks the gateway to delete <paramref name="lease"/> (a request with lifetime 0), once through the bounded retries; true when it confirmed.</summary>
    public async Task<bool> DeleteAsync(ushort internalPort, PortMappingLease lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        if (lease.Protocol == MeshPortMappingProtocol.Upnp)
        {
            return _upnp is not null && await _upnp.DeleteAsync(lease, cancellationToken).ConfigureAwait(false);
        }

        if (lease.Protocol == MeshPortMappingProtocol.Pcp)
        {
            var answer = await PcpMapAsync(internalPort, 0, 0, lease.Nonce, cancellationToken).ConfigureAwait(false);
            return answer.Result == PcpSpec.ResultSuccess;
        }

        int length = NatPmpMessage.WriteMapRequest(_send, NatPmpSpec.OpMapUdp, internalPort, 0, 0);
        var response = await ExchangeNatPmpAsync(length, NatPmpSpec.OpMapUdp, internalPort, requireGrant: false, cancellationToken).ConfigureAwait(false);
        return response is { Result: NatPmpSpec.ResultSuccess };
    }

    /// <summary>
    /// Whether the gateway offers port mapping, without mapping anything: a PCP ANNOUNCE, then a
    /// NAT-PMP external-address request, then (when enabled) a UPnP IGD search and description.
    /// None when none is answered with success.
    /// </summary>
    public async Task<MeshPortMappingProtocol> ProbeAsync(CancellationToken cancellationToken)
    {
        int length = PcpMessage.WriteAnnounceRequest(_send, _clientAddress);
        bool pcp = false;
        await ExchangeAsync(length, d =>
        {
            if (PcpMessage.TryParseResponse(d, out var r) && r.Opcode == PcpSpec.OpAnnounce)
            {
                CheckEpoch(r.Epoch);
                pcp = r.Result == PcpSpec.ResultSuccess;
                return true;
            }

            return IsNatPmpVersionError(d);
        }, cancellationToken).ConfigureAwait(false);
        if (pcp)
        {
            return MeshPortMappingProtocol.Pcp;
        }

        if (await NatPmpExternalAddressAsync(cancellationToken).ConfigureAwait(false) is not null)
        {
            return MeshPortMappingProtocol.NatPmp;
        }

        return _upnp is not null && await _upnp.ProbeAsync(cancellationToken).ConfigureAwait(false)
            ? MeshPortMappingProtocol.Upnp
            : MeshPortMappingProtocol.None;
    }

    public void Dispose()
    {
        _socket.Dispose();
        _upnp?.Dispose();
    }

    private async Task<(PortMappingLease? Lease, int? Result)> PcpMapAsync(ushort internalPort, ushort suggested, uint seconds, PcpNonce nonce, CancellationToken cancellationToken)
    {
        int length = PcpMessage.WriteMapRequest(_send, seconds, _clientAddress, nonce, PcpSpec.ProtocolUdp, internalPort, suggested, null);
        PortMappingLease? lease = null;
        int? result = null;
        await ExchangeAsync(length, d =>
        {
            if (IsNatPmpVersionError(d))
            {
                result = PcpSpec.ResultUnsupportedVersion; // a NAT-PMP-only gateway (RFC 6887 §9)
                return true;
            }

            if (!PcpMessage.TryParseResponse(d, out var r) || r.Opcode != PcpSpec.OpMap)
            {
                return false;
            }

            if (!r.HasMapBody)
            {
                // An error answered with the header alone carries no nonce; only "unsupported version" means anything here.
                if (r.Result != PcpSpec.ResultUnsupportedVersion)
                {
                    return false;
                }

                result = r.Result;
                return true;
            }

            if (r.Nonce != nonce || r.Protocol != PcpSpec.ProtocolUdp || r.InternalPort != internalPort)
            {
                return false;
            }

            CheckEpoch(r.Epoch);
            result = r.Result;
            if (r.Result == PcpSpec.ResultSuccess && seconds != 0)
            {
                if (r.Lifetime == 0 || r.ExternalPort == 0 || r.ExternalAddress is not { AddressFamily: AddressFamily.InterNetwork } external || external.Equals(IPAddress.Any))
                {
                    return false; // a "success" that grants nothing usable
                }

                lease = new PortMappingLease(MeshPortMappingProtocol.Pcp, new IPEndPoint(external, r.ExternalPort), TimeSpan.FromSeconds(r.Lifetime), nonce);
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
        return (lease, result);
    }

    private async Task<PortMappingLease?> NatPmpMapAsync(ushort internalPort, ushort suggested, uint seconds, CancellationToken cancellationToken)
    {
        // NAT-PMP's mapping answer has no external address: ask for it first.
        var external = await NatPmpExternalAddressAsync(cancellationToken).ConfigureAwait(false);
        if (external is null)
        {
            return null;
        }

        int length = NatPmpMessage.WriteMapRequest(_send, NatPmpSpec.OpMapUdp, internalPort, suggested, seconds);
        var response = await ExchangeNatPmpAsync(length, NatPmpSpec.OpMapUdp, internalPort, requireGrant: true, cancellationToken).ConfigureAwait(false);
        if (response is not { } r)
        {
            return null;
        }

        if (r.Result != NatPmpSpec.ResultSuccess)
        {
            throw new PortMappingRefusedException(MeshPortMappingProtocol.NatPmp, r.Result);
        }

        return new PortMappingLease(MeshPortMappingProtocol.NatPmp, new IPEndPoint(external, r.ExternalPort), TimeSpan.FromSeconds(r.Lifetime), default);
    }

    private async Task<IPAddress?> NatPmpExternalAddressAsync(CancellationToken cancellationToken)
    {
        int length = NatPmpMessage.WriteExternalAddressRequest(_send);
        var response = await ExchangeNatPmpAsync(length, NatPmpSpec.OpExternalAddress, 0, requireGrant: false, cancellationToken).ConfigureAwait(false);
        if (response is not { Result: NatPmpSpec.ResultSuccess } r || r.ExternalAddress == 0)
        {
            if (response is { } refused)
            {
                throw new PortMappingRefusedException(MeshPortMappingProtocol.NatPmp, refused.Result);
            }

            return null;
        }

        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, r.ExternalAddress);
        return new IPAddress(bytes);
    }

    /// <summary>One NAT-PMP exchange: the answer with the right opcode (and, for a mapping, the internal port), or null.</summary>
    private async Task<NatPmpResponse?> ExchangeNatPmpAsync(int length, byte opcode, ushort internalPort, bool requireGrant, CancellationToken cancellationToken)
    {
        NatPmpResponse? answer = null;
        await ExchangeAsync(length, d =>
        {
            if (!NatPmpMessage.TryParseResponse(d, out var r) || r.RequestOpcode != opcode)
            {
                return false;
            }

            bool full = d.Length != NatPmpSpec.ErrorResponseLength;
            if (opcode != NatPmpSpec.OpExternalAddress && full && r.InternalPort != internalPort)
            {
                return false;
            }

            if (requireGrant && r.Result == NatPmpSpec.ResultSuccess && (r.Lifetime == 0 || r.ExternalPort == 0))
            {
                return false; // a mapping "success" that grants nothing usable
            }

            CheckEpoch(r.Epoch);
            answer = r;
            return true;
        }, cancellationToken).ConfigureAwait(false);
        return answer;
    }

    private static bool IsNatPmpVersionError(ReadOnlySpan<byte> d) =>
        NatPmpMessage.TryParseResponse(d, out var r) && r.Result == NatPmpSpec.ResultUnsupportedVersion;

    private delegate bool Accept(ReadOnlySpan<byte> datagram);

    /// <summary>
    /// Sends <c>_send[..length]</c> to the gateway up to <see cref="Attempts"/> times and passes each
    /// datagram from the gateway to <paramref name="accept"/> until it takes one; everything it does
    /// not take is dropped and counted. False when nothing was taken in time.
    /// </summary>
    private async Task<bool> ExchangeAsync(int length, Accept accept, CancellationToken cancellationToken)
    {
        var wait = FirstWait;
        for (int attempt = 0; attempt < Attempts; attempt++)
        {
            await _socket.SendToAsync(_send.AsMemory(0, length), SocketFlags.None, _gatewayAddress, cancellationToken).ConfigureAwait(false);
            using var timeout = new CancellationTokenSource(wait, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            try
            {
                while (true)
                {
                    int received = await _socket.ReceiveFromAsync(_receive, SocketFlags.None, _source, linked.Token).ConfigureAwait(false);
                    if (_source.Equals(_gatewayAddress) && received <= PcpSpec.MaxLength && accept(_receive.AsSpan(0, received)))
                    {
                        return true;
                    }

                    _drops.Increment(DropReason.PortMappingUnmatched);
                }
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                // resend
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable)
            {
                // ICMP unreachable for an earlier send (nothing listens on 5351): no server there.
                return false;
            }

            wait *= 2;
        }

        return false;
    }

    /// <summary>RFC 6886 §3.6: the server's seconds-since-epoch must advance about as the client's clock does.</summary>
    private void CheckEpoch(uint epoch)
    {
        long now = _time.GetTimestamp();
        if (_haveEpoch)
        {
            double clientDelta = _time.GetElapsedTime(_lastEpochAt, now).TotalSeconds;
            // The gateway lost its state when its epoch is more than 2 s below the conservative estimate, last + 7/8 of the client's elapsed time.
            if ((double)epoch + 2 < _lastEpoch + (clientDelta * 7 / 8))
            {
                Interlocked.Increment(ref _gatewayRestarts);
                StateLost = true;
            }
        }

        _lastEpoch = epoch;
        _lastEpochAt = now;
        _haveEpoch = true;
    }

    private static IPAddress LocalAddressToward(Socket socket, IPEndPoint gateway)
    {
        // The address the kernel would send from: what a connected UDP socket of the same namespace reports.
        using var probe = new Socket(socket.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            probe.Connect(gateway);
            return ((IPEndPoint)probe.LocalEndPoint!).Address;
        }
        catch (SocketException)
        {
            return ((IPEndPoint)socket.LocalEndPoint!).Address;
        }
    }
}
