using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Forwarding;

namespace TunnelMesh.Net.Socks;

/// <summary>
/// One client of a <see cref="MeshSocks5Server"/>: the handshake (greeting, optional RFC 1929
/// sub-negotiation, request), the dial through the mesh, the reply, then the relay in both
/// directions with half-close. <see cref="RunAsync"/> never throws; whatever the client sends,
/// the worst outcome is that this connection is closed and counted.
/// </summary>
internal sealed class Socks5Connection : Forwarding.ITrackedConnection
{
    private readonly MeshSocks5Server _server;
    private readonly Socket _client;
    private readonly EndPoint? _clientEndPoint;
    private readonly CancellationToken _stopping;
    private readonly ILogger _logger;

    public Socks5Connection(MeshSocks5Server server, Socket client, ILogger logger, CancellationToken stopping)
    {
        _server = server;
        _client = client;
        _stopping = stopping;
        _logger = logger;
        _clientEndPoint = client.RemoteEndPoint;
    }

    /// <summary>The task of <see cref="RunAsync"/>, set by <see cref="Start"/>.</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    /// <summary>Starts serving the client.</summary>
    public void Start() => Completion = RunAsync();

    private async Task RunAsync()
    {
        // After a refusal (0xFF, a failed login, a failure reply) the close is graceful (FIN), so
        // the client reads the reply before it sees the end; a reset could discard it.
        bool graceful = true;
        bool relayed = false;
        try
        {
            Target? target = await HandshakeAndDialAsync().ConfigureAwait(false);
            if (target is { } t)
            {
                // From here on the relay owns both connections and closes them.
                relayed = true;
                await RelayAsync(t).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            // Nothing a client sends may take the server down; an unexpected error closes this connection only.
            graceful = false;
            Log.ConnectionFailed(_logger, _clientEndPoint, ex);
        }
        finally
        {
            if (!relayed)
            {
                TcpRelay.Close(_client, null, graceful && !_stopping.IsCancellationRequested);
            }

            _server.OnConnectionClosed(this);
        }
    }

    /// <summary>The dialled connection and what the client asked for (for logs).</summary>
    private readonly record struct Target(MeshTcpStream Stream, string Host, int Port);

    /// <summary>
    /// Runs the handshake and the dial. Returns the mesh connection after a success reply was sent;
    /// null when the connection is to be closed (everything already counted and logged).
    /// </summary>
    private async Task<Target?> HandshakeAndDialAsync()
    {
        try
        {
            _client.NoDelay = true;
        }
        catch (SocketException)
        {
            // Already reset by the client; the first read will tell.
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(Socks5Protocol.MaxHandshakeMessage);
        using var handshake = CancellationTokenSource.CreateLinkedTokenSource(_stopping);
        handshake.CancelAfter(_server.Options.HandshakeTimeout);
        CancellationToken ct = handshake.Token;
        try
        {
            Request? request = await ReadHandshakeAsync(buffer, ct).ConfigureAwait(false);
            if (request is not { } r)
            {
                return null;
            }

            // The client has sent everything; from here on the dial's own timeout applies, and the
            // reply (success or failure) must not be cut off by HandshakeTimeout.
            return await DialAsync(r, buffer).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            return null;
        }
        catch (OperationCanceledException)
        {
            ProtocolError("the handshake was not finished within HandshakeTimeout");
            return null;
        }
        catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException)
        {
            ProtocolError("the connection failed during the handshake: " + ex.Message);
            return null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A parsed CONNECT request: either an address or a host name (a mesh name or an IP literal).</summary>
    private readonly record struct Request(IPAddress? Address, string? HostName, int Port)
    {
        public string Host => HostName ?? Address!.ToString();
    }

    /// <summary>
    /// Greeting, method selection, authentication and request. Returns the CONNECT request, or null
    /// after the connection was refused (reply sent where the protocol has one) and counted.
    /// </summary>
    private async Task<Request?> ReadHandshakeAsync(byte[] buffer, CancellationToken ct)
    {
        // Greeting: VER NMETHODS METHODS[NMETHODS].
        if (!await ReadExactlyAsync(buffer.AsMemory(0, 2), ct).ConfigureAwait(false))
        {
            return Truncated("greeting");
        }

        if (buffer[0] != Socks5Protocol.Version)
        {
            return BadVersion("greeting", buffer[0]);
        }

        int methodCount = buffer[1];
        if (!await ReadExactlyAsync(buffer.AsMemory(0, methodCount), ct).ConfigureAwait(false))
        {
            return Truncated("greeting");
        }

        byte wanted = _server.RequiresAuthentication ? Socks5Protocol.MethodUsernamePassword : Socks5Protocol.MethodNoAuth;
        byte method = buffer.AsSpan(0, methodCount).Contains(wanted) ? wanted : Socks5Protocol.MethodNoAcceptable;
        buffer[0] = Socks5Protocol.Version;
        buffer[1] = method;
        await SendAsync(buffer.AsMemory(0, 2), ct).ConfigureAwait(false);
        if (method == Socks5Protocol.MethodNoAcceptable)
        {
            _server.CountNoAcceptableMethod();
            Log.NoAcceptableMethod(_logger, _clientEndPoint);
            return null;
        }

        if (method == Socks5Protocol.MethodUsernamePassword && !await AuthenticateAsync(buffer, ct).ConfigureAwait(false))
        {
            return null;
        }

        // Request: VER CMD RSV ATYP DST.ADDR DST.PORT.
        if (!await ReadExactlyAsync(buffer.AsMemory(0, 4), ct).ConfigureAwait(false))
        {
            return Truncated("request");
        }

        if (buffer[0] != Socks5Protocol.Version)
        {
            return BadVersion("request", buffer[0]);
        }

        byte command = buffer[1];
        byte addressType = buffer[3];
        Request request;
        switch (addressType)
        {
            case Socks5Protocol.AddressIPv4:
                if (!await ReadExactlyAsync(buffer.AsMemory(0, 4 + 2), ct).ConfigureAwait(false))
                {
                    return Truncated("request");
                }

                request = new Request(new IPAddress(buffer.AsSpan(0, 4)), null, BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(4)));
                break;

            case Socks5Protocol.AddressIPv6:
                if (!await ReadExactlyAsync(buffer.AsMemory(0, 16 + 2), ct).ConfigureAwait(false))
                {
                    return Truncated("request");
                }

                request = new Request(new IPAddress(buffer.AsSpan(0, 16)), null, BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(16)));
                break;

            case Socks5Protocol.AddressDomainName:
                if (!await ReadExactlyAsync(buffer.AsMemory(0, 1), ct).ConfigureAwait(false))
                {
                    return Truncated("request");
                }

                int length = buffer[0];
                if (!await ReadExactlyAsync(buffer.AsMemory(0, length + 2), ct).ConfigureAwait(false))
                {
                    return Truncated("request");
                }

                request = new Request(null, DecodeHostName(buffer.AsSpan(0, length)), BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(length)));
                break;

            default:
                await FailAsync(buffer, Socks5Reply.AddressTypeNotSupported, "?", 0, $"address type {addressType} is not defined", ct).ConfigureAwait(false);
                return null;
        }

        if (command != Socks5Protocol.CommandConnect)
        {
            string name = command switch
            {
                Socks5Protocol.CommandBind => "BIND",
                Socks5Protocol.CommandUdpAssociate => "UDP ASSOCIATE",
                _ => $"command {command}",
            };
            await FailAsync(buffer, Socks5Reply.CommandNotSupported, request.Host, request.Port, name + " is not supported (CONNECT only)", ct).ConfigureAwait(false);
            return null;
        }

        return request;
    }

    /// <summary>RFC 1929: VER ULEN UNAME PLEN PASSWD, answered with VER STATUS; false after a failure (closed).</summary>
    private async Task<bool> AuthenticateAsync(byte[] buffer, CancellationToken ct)
    {
        if (!await ReadExactlyAsync(buffer.AsMemory(0, 2), ct).ConfigureAwait(false))
        {
            Truncated("username/password request");
            return false;
        }

        if (buffer[0] != Socks5Protocol.AuthVersion)
        {
            BadVersion("username/password request", buffer[0]);
            return false;
        }

        int userLength = buffer[1];
        // UNAME and PLEN, then PASSWD after it: at most 255 + 1 + 255 bytes in the buffer.
        if (!await ReadExactlyAsync(buffer.AsMemory(0, userLength + 1), ct).ConfigureAwait(false))
        {
            Truncated("username/password request");
            return false;
        }

        int passwordLength = buffer[userLength];
        if (!await ReadExactlyAsync(buffer.AsMemory(userLength + 1, passwordLength), ct).ConfigureAwait(false))
        {
            Truncated("username/password request");
            return false;
        }

        // Both comparisons always run (no short-circuit), each in constant time for equal lengths.
        bool userMatches = CryptographicOperations.FixedTimeEquals(buffer.AsSpan(0, userLength), _server.UsernameBytes);
        bool passwordMatches = CryptographicOperations.FixedTimeEquals(buffer.AsSpan(userLength + 1, passwordLength), _server.PasswordBytes);
        bool ok = userMatches & passwordMatches;
        CryptographicOperations.ZeroMemory(buffer.AsSpan(0, userLength + 1 + passwordLength));

        buffer[0] = Socks5Protocol.AuthVersion;
        buffer[1] = ok ? Socks5Protocol.AuthSuccess : Socks5Protocol.AuthFailure;
        await SendAsync(buffer.AsMemory(0, 2), ct).ConfigureAwait(false);
        if (!ok)
        {
            _server.CountAuthenticationFailure();
            Log.AuthenticationFailed(_logger, _clientEndPoint);
        }

        return ok;
    }

    /// <summary>Dials the request's target through the mesh and sends the reply; the mesh connection on success.</summary>
    private async Task<Target?> DialAsync(Request request, byte[] buffer)
    {
        string host = request.Host;
        int port = request.Port;
        IPAddress? address = request.Address;
        if (address is null && IPAddress.TryParse(request.HostName, out var literal))
        {
            address = literal;
        }

        if (address is { AddressFamily: AddressFamily.InterNetworkV6 })
        {
            if (!address.IsIPv4MappedToIPv6)
            {
                await FailAsync(buffer, Socks5Reply.AddressTypeNotSupported, host, port, "the mesh is IPv4 only", _stopping).ConfigureAwait(false);
                return null;
            }

            address = address.MapToIPv4();
        }

        if (address is null && request.HostName!.Length == 0)
        {
            await FailAsync(buffer, Socks5Reply.HostUnreachable, host, port, "the host name is empty or not printable ASCII", _stopping).ConfigureAwait(false);
            return null;
        }

        if (port == 0)
        {
            await FailAsync(buffer, Socks5Reply.GeneralFailure, host, port, "port 0 cannot be dialled", _stopping).ConfigureAwait(false);
            return null;
        }

        MeshTcpStream stream;
        try
        {
            // Bounded by ConnectTimeout (the mesh connection's connect timeout), not by HandshakeTimeout.
            stream = address is not null
                ? await _server.Node.DialAsync(new IPEndPoint(address, port), _server.DialOptions, _stopping).ConfigureAwait(false)
                : await _server.Node.DialAsync(request.HostName!, port, _server.DialOptions, _stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            return null;
        }
        catch (Exception ex) when (ex is SocketException or IOException or InvalidOperationException or ArgumentException)
        {
            SocketError error = ex switch
            {
                SocketException se => se.SocketErrorCode,
                IOException { InnerException: SocketException se } => se.SocketErrorCode,
                _ => SocketError.SocketError,
            };
            if (error == SocketError.TimedOut)
            {
                Log.ConnectTimedOut(_logger, _clientEndPoint, host, port);
            }

            await FailAsync(buffer, ReplyFor(error), host, port, ex.Message, _stopping).ConfigureAwait(false);
            return null;
        }

        try
        {
            stream.NoDelay = true;
            IPEndPoint local = stream.LocalEndPoint;
            WriteReply(buffer, Socks5Reply.Succeeded, local);
            await SendAsync(buffer.AsMemory(0, Socks5Protocol.IPv4ReplyLength), _stopping).ConfigureAwait(false);
            _server.CountSucceeded();
            Log.Connected(_logger, _clientEndPoint, host, port, local);
            return new Target(stream, host, port);
        }
        catch
        {
            stream.Abort();
            throw;
        }
    }

    /// <summary>The reply code for an error of <see cref="MeshNode.DialAsync(string, int, CancellationToken)"/>.</summary>
    internal static Socks5Reply ReplyFor(SocketError error) => error switch
    {
        SocketError.HostNotFound or SocketError.HostUnreachable or SocketError.HostDown or SocketError.NoData => Socks5Reply.HostUnreachable,

        // RFC 1928 has no "timed out"; TTL expired (0x06) would be wrong, so the host counts as unreachable (logged as a timeout).
        SocketError.TimedOut => Socks5Reply.HostUnreachable,
        SocketError.ConnectionRefused => Socks5Reply.ConnectionRefused,
        SocketError.NetworkUnreachable or SocketError.NetworkDown => Socks5Reply.NetworkUnreachable,
        SocketError.AccessDenied => Socks5Reply.ConnectionNotAllowed,
        _ => Socks5Reply.GeneralFailure,
    };

    /// <summary>Relays both directions until both are finished (<see cref="TcpRelay"/>), then logs how it ended.</summary>
    private async Task RelayAsync(Target target)
    {
        RelayResult result = await TcpRelay.RunAsync(_client, target.Stream, _server, _stopping).ConfigureAwait(false);
        if (result.Graceful)
        {
            Log.RelayEnded(_logger, _clientEndPoint, target.Host, target.Port, result.SocketToMesh, result.MeshToSocket);
        }
        else if (result.Error is { } error)
        {
            Log.RelayAborted(_logger, _clientEndPoint, target.Host, target.Port, error);
        }
    }

    /// <summary>Sends a failure reply (best effort), counts it and logs it.</summary>
    private async Task FailAsync(byte[] buffer, Socks5Reply reply, string host, int port, string reason, CancellationToken ct)
    {
        _server.CountFailed(reply);
        Log.RequestFailed(_logger, _clientEndPoint, host, port, reply, reason);
        WriteReply(buffer, reply, null);
        await SendAsync(buffer.AsMemory(0, Socks5Protocol.IPv4ReplyLength), ct).ConfigureAwait(false);
    }

    /// <summary>VER REP RSV ATYP=1 BND.ADDR BND.PORT; 0.0.0.0:0 without an endpoint.</summary>
    private static void WriteReply(Span<byte> buffer, Socks5Reply reply, IPEndPoint? bound)
    {
        buffer[0] = Socks5Protocol.Version;
        buffer[1] = (byte)reply;
        buffer[2] = 0;
        buffer[3] = Socks5Protocol.AddressIPv4;
        buffer.Slice(4, 6).Clear();
        if (bound is not null && bound.Address.TryWriteBytes(buffer.Slice(4, 4), out int written) && written == 4)
        {
            BinaryPrimitives.WriteUInt16BigEndian(buffer.Slice(8), (ushort)bound.Port);
        }
    }

    /// <summary>A host name from the request: printable ASCII only (anything else gives an empty name, answered with host unreachable).</summary>
    private static string DecodeHostName(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            if (b is < 0x21 or > 0x7E)
            {
                return "";
            }
        }

        return Encoding.ASCII.GetString(bytes);
    }

    private async ValueTask<bool> ReadExactlyAsync(Memory<byte> destination, CancellationToken ct)
    {
        while (destination.Length > 0)
        {
            int n = await _client.ReceiveAsync(destination, SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
            {
                return false;
            }

            destination = destination[n..];
        }

        return true;
    }

    private async ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (data.Length > 0)
        {
            int n = await _client.SendAsync(data, SocketFlags.None, ct).ConfigureAwait(false);
            data = data[n..];
        }
    }

    private Request? Truncated(string what) => ProtocolError($"the {what} ended early");

    private Request? BadVersion(string what, byte version) => ProtocolError($"the {what} has version {version}");

    private Request? ProtocolError(string reason)
    {
        _server.CountProtocolError();
        Log.ProtocolError(_logger, _clientEndPoint, reason);
        return null;
    }
}
