using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TunnelMesh.Net.Wire.Stun;

namespace TunnelMesh.Net.Server.Stun;

/// <summary>
/// The coordinator's STUN responder: a hosted service on one UDP socket (one more per
/// <see cref="StunOptions.AdditionalPorts"/> entry) that answers RFC 5389
/// binding requests with the source address and port it saw, in an XOR-MAPPED-ADDRESS (and a
/// FINGERPRINT when the request had one). Nodes send these from their WireGuard socket to learn
/// the endpoint their NAT gives them.
/// </summary>
/// <remarks>
/// Each datagram costs one bounded parse (at most <see cref="StunOptions.MaxDatagramSize"/> bytes)
/// and at most one answer of at most 48 bytes, so a flood cannot amplify. Anything that is not a
/// well-formed binding request is dropped and counted (<see cref="Dropped"/>); it never stops the
/// loop. Attributes of a request are not interpreted (no authentication: binding only).
/// </remarks>
internal sealed partial class StunResponder : BackgroundService
{
    private readonly StunOptions _options;
    private readonly ILogger _logger;
    private Socket? _socket;
    private Socket[] _sockets = [];
    private long _answered;
    private long _dropped;

    public StunResponder(IOptions<StunOptions> options, ILogger<StunResponder> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _logger = logger;
    }

    /// <summary>The bound endpoint (after start).</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint?)_socket?.LocalEndPoint ?? throw new InvalidOperationException("The STUN responder is not started.");

    /// <summary>Every bound endpoint: <see cref="LocalEndPoint"/>, then one per additional port (after start).</summary>
    public IReadOnlyList<IPEndPoint> LocalEndPoints => _socket is null
        ? throw new InvalidOperationException("The STUN responder is not started.")
        : _sockets.Select(s => (IPEndPoint)s.LocalEndPoint!).ToList();

    /// <summary>Binding requests answered.</summary>
    public long Answered => Interlocked.Read(ref _answered);

    /// <summary>Datagrams dropped: not STUN, malformed, or not a binding request.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Binds the socket (so a bad port fails the host's start) and starts answering.</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        var sockets = new List<Socket>();
        try
        {
            sockets.Add(Bind(_options, _options.Port));
            foreach (int port in _options.AdditionalPorts)
            {
                sockets.Add(Bind(_options, port));
            }
        }
        catch
        {
            sockets.ForEach(s => s.Dispose());
            throw;
        }

        _sockets = [.. sockets];
        _socket = _sockets[0];
        foreach (var socket in _sockets)
        {
            Log.Listening(_logger, (IPEndPoint)socket.LocalEndPoint!);
        }
        return base.StartAsync(cancellationToken);
    }

    /// <inheritdoc/>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await base.StopAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            DisposeSockets();
        }
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
        DisposeSockets();
        base.Dispose();
    }

    private void DisposeSockets()
    {
        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }
    }

    /// <inheritdoc/>
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(_sockets.Select(s => AnswerAsync(s, stoppingToken)));

    private async Task AnswerAsync(Socket socket, CancellationToken stoppingToken)
    {
        var request = new byte[_options.MaxDatagramSize + 1]; // one more: a datagram filling it was too long
        var response = new byte[64];
        var source = new SocketAddress(socket.AddressFamily);
        while (!stoppingToken.IsCancellationRequested)
        {
            int length;
            try
            {
                length = await socket.ReceiveFromAsync(request, SocketFlags.None, source, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex)
            {
                // E.g. an ICMP error for an earlier answer reported on the socket: not fatal.
                Interlocked.Increment(ref _dropped);
                Log.ReceiveFailed(_logger, ex.SocketErrorCode);
                continue;
            }

            int answer = Answer(request.AsSpan(0, length), source, response);
            if (answer == 0)
            {
                Interlocked.Increment(ref _dropped);
                continue;
            }

            // Counted before the send: the asker can read the answer before SendToAsync returns here,
            // and anyone who has seen the answer must also see it counted.
            Interlocked.Increment(ref _answered);
            try
            {
                await socket.SendToAsync(response.AsMemory(0, answer), SocketFlags.None, source, stoppingToken).ConfigureAwait(false);
            }
            catch (SocketException ex)
            {
                Interlocked.Decrement(ref _answered);
                Interlocked.Increment(ref _dropped);
                Log.SendFailed(_logger, ex.SocketErrorCode);
            }
        }
    }

    /// <summary>Writes the answer to one datagram into <paramref name="response"/>; 0 when it gets none.</summary>
    internal int Answer(ReadOnlySpan<byte> datagram, SocketAddress source, Span<byte> response)
    {
        if (datagram.Length > _options.MaxDatagramSize
            || !StunMessage.TryParse(datagram, out var message)
            || message.Type != StunSpec.BindingRequest
            || !TryGetEndPoint(source, out var client))
        {
            return 0;
        }

        return StunMessage.WriteBindingSuccess(response, message.TransactionId, client, message.HasFingerprint);
    }

    private static bool TryGetEndPoint(SocketAddress address, out IPEndPoint endpoint)
    {
        var bytes = address.Buffer.Span;
        int port = BinaryPrimitives.ReadUInt16BigEndian(bytes[2..]);
        if (address.Family == AddressFamily.InterNetwork && address.Size >= 8)
        {
            endpoint = new IPEndPoint(new IPAddress(bytes.Slice(4, 4)), port);
            return true;
        }

        if (address.Family == AddressFamily.InterNetworkV6 && address.Size >= 24)
        {
            var ip = new IPAddress(bytes.Slice(8, 16));
            endpoint = new IPEndPoint(ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip, port);
            return true;
        }

        endpoint = null!;
        return false;
    }

    private static Socket Bind(StunOptions options, int port)
    {
        if (options.BindAddress.Equals(IPAddress.IPv6Any) && Socket.OSSupportsIPv6)
        {
            var dual = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
            try
            {
                dual.Bind(new IPEndPoint(IPAddress.IPv6Any, port));
                return dual;
            }
            catch (SocketException ex) when (ex.SocketErrorCode != SocketError.AddressAlreadyInUse)
            {
                dual.Dispose(); // no usable IPv6: IPv4 only
            }
            catch
            {
                dual.Dispose();
                throw;
            }
        }

        var address = options.BindAddress.Equals(IPAddress.IPv6Any) ? IPAddress.Any : options.BindAddress;
        var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.Bind(new IPEndPoint(address, port));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2300, Level = LogLevel.Information, Message = "STUN responder listening on UDP {EndPoint}")]
        public static partial void Listening(ILogger logger, IPEndPoint endPoint);

        [LoggerMessage(EventId = 2301, Level = LogLevel.Debug, Message = "STUN receive error {Error}")]
        public static partial void ReceiveFailed(ILogger logger, SocketError error);

        [LoggerMessage(EventId = 2302, Level = LogLevel.Debug, Message = "STUN answer not sent: {Error}")]
        public static partial void SendFailed(ILogger logger, SocketError error);
    }
}
