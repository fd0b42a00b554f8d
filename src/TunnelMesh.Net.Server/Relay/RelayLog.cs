using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Server.Relay;

/// <summary>Source-generated log messages of the relay. Public keys and node ids only; no token is ever logged.</summary>
internal static partial class RelayLog
{
    [LoggerMessage(4001, LogLevel.Information, "Relay: node {NodeId} ({PublicKey}) connected")]
    public static partial void Connected(ILogger logger, long nodeId, NodePublicKey publicKey);

    [LoggerMessage(4002, LogLevel.Information, "Relay: node {NodeId} ({PublicKey}) disconnected after {Frames} frames from it")]
    public static partial void Disconnected(ILogger logger, long nodeId, NodePublicKey publicKey, long frames);

    [LoggerMessage(4003, LogLevel.Information, "Relay: node {NodeId} ({PublicKey}) connected again; the older connection is closed")]
    public static partial void Replaced(ILogger logger, long nodeId, NodePublicKey publicKey);

    [LoggerMessage(4004, LogLevel.Warning, "Relay: node {NodeId} ({PublicKey}) sent a frame over {Limit} bytes; closing its connection")]
    public static partial void Oversize(ILogger logger, long nodeId, NodePublicKey publicKey, int limit);

    [LoggerMessage(4005, LogLevel.Information, "Relay: refused an unauthenticated request from {Remote}")]
    public static partial void Refused(ILogger logger, string? remote);

    [LoggerMessage(4006, LogLevel.Debug, "Relay: connection of node {NodeId} ended with an error")]
    public static partial void ConnectionFailed(ILogger logger, long nodeId, Exception exception);
}
