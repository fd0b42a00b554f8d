using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Server.Api;

/// <summary>The coordinator API's log messages. None carries a secret: keys and tokens appear only by id.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Node {NodeId} '{Name}' joined at {Address} ({Status}, auth key {AuthKeyId})")]
    public static partial void NodeJoined(ILogger logger, long nodeId, string name, string address, string status, long? authKeyId);

    [LoggerMessage(2, LogLevel.Warning, "Join from {ClientAddress} refused: {Reason}")]
    public static partial void JoinRefused(ILogger logger, string? clientAddress, string reason);

    [LoggerMessage(3, LogLevel.Warning, "Join from {ClientAddress} rate-limited")]
    public static partial void JoinRateLimited(ILogger logger, string? clientAddress);

    [LoggerMessage(4, LogLevel.Warning, "Admin request {Method} {Path} from {ClientAddress} refused: no or wrong admin credential")]
    public static partial void AdminRefused(ILogger logger, string method, string path, string? clientAddress);

    [LoggerMessage(5, LogLevel.Information, "Auth key {AuthKeyId} created (reusable {Reusable}, ephemeral {Ephemeral}, expires {Expires:o})")]
    public static partial void AuthKeyCreated(ILogger logger, long authKeyId, bool reusable, bool ephemeral, DateTimeOffset expires);

    [LoggerMessage(6, LogLevel.Information, "Auth key {AuthKeyId} revoked")]
    public static partial void AuthKeyRevoked(ILogger logger, long authKeyId);

    [LoggerMessage(7, LogLevel.Information, "Node {NodeId} renamed to '{Name}'")]
    public static partial void NodeRenamed(ILogger logger, long nodeId, string name);

    [LoggerMessage(8, LogLevel.Information, "Node {NodeId} deleted")]
    public static partial void NodeDeleted(ILogger logger, long nodeId);

    [LoggerMessage(9, LogLevel.Information, "Node {NodeId} expired")]
    public static partial void NodeExpired(ILogger logger, long nodeId);

    [LoggerMessage(10, LogLevel.Information, "Node {NodeId} opened a map stream")]
    public static partial void MapStreamOpened(ILogger logger, long nodeId);

    [LoggerMessage(11, LogLevel.Information, "Node {NodeId} map stream closed: {Reason}")]
    public static partial void MapStreamClosed(ILogger logger, long nodeId, string reason);

    [LoggerMessage(12, LogLevel.Warning, "Node {NodeId} map stream failed")]
    public static partial void MapStreamFailed(ILogger logger, long nodeId, Exception exception);

    [LoggerMessage(13, LogLevel.Error, "Reading the peer map from the store failed; retrying in a second")]
    public static partial void BroadcastFailed(ILogger logger, Exception exception);

    [LoggerMessage(14, LogLevel.Information, "Removed {Count} ephemeral node(s) offline since before {OfflineBefore:o}")]
    public static partial void EphemeralRemoved(ILogger logger, int count, DateTimeOffset offlineBefore);

    [LoggerMessage(15, LogLevel.Error, "Removing offline ephemeral nodes failed")]
    public static partial void EphemeralSweepFailed(ILogger logger, Exception exception);

    [LoggerMessage(16, LogLevel.Information, "Node {NodeId} updated its endpoints ({Count})")]
    public static partial void EndpointsUpdated(ILogger logger, long nodeId, int count);

    [LoggerMessage(17, LogLevel.Warning, "Request {Method} {Path} from {ClientAddress} refused: node token missing or invalid")]
    public static partial void NodeTokenRefused(ILogger logger, string method, string path, string? clientAddress);

    [LoggerMessage(18, LogLevel.Error, "The store did not answer the health check")]
    public static partial void HealthFailed(ILogger logger, Exception exception);
}
