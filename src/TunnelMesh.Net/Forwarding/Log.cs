using System.Net;
using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Forwarding;

/// <summary>Log messages of the port forwarder (source-generated), event ids 5400-5409.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 5400, Level = LogLevel.Information, Message = "Forwarding mesh {MeshEndPoint} to {Target}{Restriction}")]
    public static partial void Forwarding(ILogger logger, IPEndPoint meshEndPoint, EndPoint target, string restriction);

    [LoggerMessage(EventId = 5401, Level = LogLevel.Information, Message = "Forwarding of mesh {MeshEndPoint} stopped")]
    public static partial void Stopped(ILogger logger, IPEndPoint meshEndPoint);

    [LoggerMessage(EventId = 5402, Level = LogLevel.Warning, Message = "Mesh {MeshEndPoint}: connection from {Peer} reset: {Limit} connections are open (MaxConnections)")]
    public static partial void Rejected(ILogger logger, IPEndPoint meshEndPoint, IPEndPoint peer, int limit);

    [LoggerMessage(EventId = 5403, Level = LogLevel.Warning, Message = "Mesh {MeshEndPoint}: connection from {Peer} ({PeerName}) reset: it carries none of the allowed tags")]
    public static partial void Denied(ILogger logger, IPEndPoint meshEndPoint, IPEndPoint peer, string peerName);

    [LoggerMessage(EventId = 5404, Level = LogLevel.Warning, Message = "Mesh {MeshEndPoint}: connection from {Peer} reset: connecting to {Target} failed ({Error})")]
    public static partial void ConnectFailed(ILogger logger, IPEndPoint meshEndPoint, IPEndPoint peer, EndPoint target, string error);

    [LoggerMessage(EventId = 5405, Level = LogLevel.Debug, Message = "Mesh {MeshEndPoint}: {Peer} connected to {Target}")]
    public static partial void Connected(ILogger logger, IPEndPoint meshEndPoint, IPEndPoint peer, EndPoint target);

    [LoggerMessage(EventId = 5406, Level = LogLevel.Debug, Message = "Mesh {MeshEndPoint}: relay of {Peer} ended ({ToTarget} bytes to the target, {FromTarget} from it)")]
    public static partial void RelayEnded(ILogger logger, IPEndPoint meshEndPoint, IPEndPoint peer, long toTarget, long fromTarget);

    [LoggerMessage(EventId = 5407, Level = LogLevel.Debug, Message = "Mesh {MeshEndPoint}: relay of {Peer} aborted")]
    public static partial void RelayAborted(ILogger logger, IPEndPoint meshEndPoint, IPEndPoint peer, Exception exception);

    [LoggerMessage(EventId = 5408, Level = LogLevel.Error, Message = "Mesh {MeshEndPoint}: accept failed; the forwarder stops accepting")]
    public static partial void AcceptFailed(ILogger logger, IPEndPoint meshEndPoint, Exception exception);

    [LoggerMessage(EventId = 5409, Level = LogLevel.Error, Message = "Mesh {MeshEndPoint}: unexpected error with the connection from {Peer}; it was reset")]
    public static partial void ConnectionFailed(ILogger logger, IPEndPoint meshEndPoint, IPEndPoint peer, Exception exception);
}
