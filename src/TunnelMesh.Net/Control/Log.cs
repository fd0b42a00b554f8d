using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Control;

/// <summary>Source-generated log messages of the node's control plane. No auth key or node token ever appears in one.</summary>
internal static partial class ControlLog
{
    [LoggerMessage(4001, LogLevel.Information, "Joined the mesh as {Name} ({Addresses}), {PeerCount} peers")]
    public static partial void Joined(ILogger logger, string name, string addresses, int peerCount);

    [LoggerMessage(4002, LogLevel.Warning, "The coordinator is not available ({Reason}); starting from the state saved in {Directory} and reconnecting in the background")]
    public static partial void StartingFromState(ILogger logger, string directory, string reason);

    [LoggerMessage(4003, LogLevel.Warning, "The coordinator refused the node token: {Reason}")]
    public static partial void TokenRefused(ILogger logger, string reason);

    [LoggerMessage(4004, LogLevel.Warning, "The coordinator gives this node other addresses ({New}) than it runs with ({Old}); restart the node to use them")]
    public static partial void AddressChanged(ILogger logger, string old, string @new);

    [LoggerMessage(4005, LogLevel.Information, "Peer map stream connected to {Uri}")]
    public static partial void MapConnected(ILogger logger, Uri uri);

    [LoggerMessage(4006, LogLevel.Information, "Peer map stream closed by the coordinator ({Status} {Description})")]
    public static partial void MapClosed(ILogger logger, string status, string description);

    [LoggerMessage(4007, LogLevel.Warning, "Control connection failed: {Kind}: {Reason}")]
    public static partial void ControlFailed(ILogger logger, string kind, string reason);

    [LoggerMessage(4008, LogLevel.Debug, "Reconnecting to the coordinator in {Seconds:0.0} s")]
    public static partial void Reconnecting(ILogger logger, double seconds);

    [LoggerMessage(4009, LogLevel.Warning, "Ignored a peer map message: {Reason}")]
    public static partial void BadMapMessage(ILogger logger, string reason);

    [LoggerMessage(4010, LogLevel.Warning, "Ignored peer {PublicKey} of the map: {Reason}")]
    public static partial void PeerSkipped(ILogger logger, string publicKey, string reason);

    [LoggerMessage(4011, LogLevel.Debug, "Ignored a delta to map version {Version}; the node is at {Current}")]
    public static partial void StaleDelta(ILogger logger, long version, long current);

    [LoggerMessage(4012, LogLevel.Information, "Applied peer map {Type} version {Version}: {PeerCount} peers ({Added} added, {Changed} changed, {Removed} removed)")]
    public static partial void MapApplied(ILogger logger, Control.PeerMapMessageType type, long version, int peerCount, int added, int changed, int removed);

    [LoggerMessage(4013, LogLevel.Debug, "Reported endpoints {Endpoints}")]
    public static partial void EndpointsReported(ILogger logger, string endpoints);

    [LoggerMessage(4014, LogLevel.Warning, "Reporting the node's endpoints failed: {Reason}")]
    public static partial void EndpointReportFailed(ILogger logger, string reason);

    [LoggerMessage(4015, LogLevel.Warning, "Writing the state directory failed: {Reason}")]
    public static partial void StateWriteFailed(ILogger logger, string reason);

    [LoggerMessage(4016, LogLevel.Information, "An address of this host went away or its public address moved: reconnecting to the coordinator at once, on new connections")]
    public static partial void AddressLost(ILogger logger);
}
