using System.Net;
using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Socks;

/// <summary>Log messages of the SOCKS5 server (source-generated). Credentials are never logged.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 5300, Level = LogLevel.Information, Message = "SOCKS5 proxy listening on {EndPoint} ({Authentication})")]
    public static partial void Listening(ILogger logger, IPEndPoint endPoint, string authentication);

    [LoggerMessage(EventId = 5301, Level = LogLevel.Information, Message = "SOCKS5 proxy on {EndPoint} stopped")]
    public static partial void Stopped(ILogger logger, IPEndPoint endPoint);

    [LoggerMessage(EventId = 5302, Level = LogLevel.Warning, Message = "SOCKS5 connection from {Client} rejected: {Limit} connections are open (MaxConnections)")]
    public static partial void Rejected(ILogger logger, EndPoint? client, int limit);

    [LoggerMessage(EventId = 5303, Level = LogLevel.Debug, Message = "SOCKS5 client {Client}: protocol error: {Reason}")]
    public static partial void ProtocolError(ILogger logger, EndPoint? client, string reason);

    [LoggerMessage(EventId = 5304, Level = LogLevel.Debug, Message = "SOCKS5 client {Client}: no acceptable authentication method offered")]
    public static partial void NoAcceptableMethod(ILogger logger, EndPoint? client);

    [LoggerMessage(EventId = 5305, Level = LogLevel.Warning, Message = "SOCKS5 client {Client}: username/password authentication failed")]
    public static partial void AuthenticationFailed(ILogger logger, EndPoint? client);

    [LoggerMessage(EventId = 5306, Level = LogLevel.Debug, Message = "SOCKS5 client {Client}: CONNECT {Host}:{Port} -> {Reply} ({Reason})")]
    public static partial void RequestFailed(ILogger logger, EndPoint? client, string host, int port, Socks5Reply reply, string reason);

    [LoggerMessage(EventId = 5307, Level = LogLevel.Debug, Message = "SOCKS5 client {Client}: CONNECT {Host}:{Port} via {Local}")]
    public static partial void Connected(ILogger logger, EndPoint? client, string host, int port, IPEndPoint local);

    [LoggerMessage(EventId = 5308, Level = LogLevel.Debug, Message = "SOCKS5 client {Client}: relay to {Host}:{Port} ended ({FromClient} bytes sent, {ToClient} received)")]
    public static partial void RelayEnded(ILogger logger, EndPoint? client, string host, int port, long fromClient, long toClient);

    [LoggerMessage(EventId = 5309, Level = LogLevel.Debug, Message = "SOCKS5 client {Client}: relay to {Host}:{Port} aborted")]
    public static partial void RelayAborted(ILogger logger, EndPoint? client, string host, int port, Exception exception);

    [LoggerMessage(EventId = 5310, Level = LogLevel.Error, Message = "SOCKS5 accept failed; the proxy goes on accepting")]
    public static partial void AcceptFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 5311, Level = LogLevel.Error, Message = "SOCKS5 client {Client}: unexpected error; the connection was closed")]
    public static partial void ConnectionFailed(ILogger logger, EndPoint? client, Exception exception);

    [LoggerMessage(EventId = 5312, Level = LogLevel.Information, Message = "SOCKS5 client {Client}: CONNECT {Host}:{Port} timed out in the mesh; replied host unreachable")]
    public static partial void ConnectTimedOut(ILogger logger, EndPoint? client, string host, int port);
}
