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

    [LoggerMessage(4010, LogLevel.Information, "Relay: replica {ReplicaId} started; other replicas reach it at {LinkUrl}")]
    public static partial void ReplicaStarted(ILogger logger, string replicaId, Uri linkUrl);

    [LoggerMessage(4011, LogLevel.Information, "Relay: link to replica {ReplicaId} at {LinkUrl} connected")]
    public static partial void LinkConnected(ILogger logger, string replicaId, Uri linkUrl);

    [LoggerMessage(4012, LogLevel.Warning, "Relay: link to replica {ReplicaId} at {LinkUrl} failed; retrying")]
    public static partial void LinkFailed(ILogger logger, string replicaId, Uri linkUrl, Exception exception);

    [LoggerMessage(4013, LogLevel.Information, "Relay: replica {ReplicaId} is gone; its link is closed")]
    public static partial void LinkClosed(ILogger logger, string replicaId);

    [LoggerMessage(4014, LogLevel.Warning, "Relay: refused a replica-link request without the cluster secret from {Remote}")]
    public static partial void LinkRefused(ILogger logger, string? remote);

    [LoggerMessage(4015, LogLevel.Information, "Relay: accepted a link from replica {ReplicaId}")]
    public static partial void LinkAccepted(ILogger logger, string replicaId);

    [LoggerMessage(4016, LogLevel.Debug, "Relay: link from replica {ReplicaId} ended with an error")]
    public static partial void LinkEnded(ILogger logger, string replicaId, Exception exception);

    [LoggerMessage(4017, LogLevel.Warning, "Relay: the replica directory in the store failed; trying again")]
    public static partial void DirectoryFailed(ILogger logger, Exception exception);
}
