using System.Net;
using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Server.AspNetCore;

/// <summary>Source-generated log messages of Kestrel on the mesh. Addresses, ports, names and keys only.</summary>
internal static partial class AspNetCoreLog
{
    [LoggerMessage(7001, LogLevel.Information, "Kestrel listens on mesh address {Address}:{Port} ({EndPoint})")]
    public static partial void Listening(ILogger logger, IPAddress address, int port, string endPoint);

    [LoggerMessage(7002, LogLevel.Information, "Kestrel stopped listening on mesh address {Address}:{Port}")]
    public static partial void Unbound(ILogger logger, IPAddress address, int port);

    [LoggerMessage(7003, LogLevel.Warning, "Mesh connection from {Remote} refused: no peer of this node owns that address any more")]
    public static partial void UnknownPeer(ILogger logger, IPEndPoint remote);

    [LoggerMessage(7004, LogLevel.Debug, "Mesh connection {ConnectionId} from {Remote} accepted (peer {PeerName}, {PublicKey})")]
    public static partial void Accepted(ILogger logger, string connectionId, IPEndPoint remote, string? peerName, NodePublicKey publicKey);

    [LoggerMessage(7005, LogLevel.Debug, "Mesh connection {ConnectionId} ended with an error")]
    public static partial void ConnectionError(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(7006, LogLevel.Warning, "A ConnectionClosed callback of mesh connection {ConnectionId} threw")]
    public static partial void ClosedCallbackFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(7007, LogLevel.Debug, "Aborting {Count} mesh connection(s) still open when the listener on {EndPoint} was disposed")]
    public static partial void AbortingLeftovers(ILogger logger, int count, string endPoint);
}
