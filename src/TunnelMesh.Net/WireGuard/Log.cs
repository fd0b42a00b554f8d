using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.WireGuard;

/// <summary>Source-generated log messages of the WireGuard layer. Keys are public keys only; no secret is logged.</summary>
internal static partial class Log
{
    [LoggerMessage(1000, LogLevel.Debug, "Sent handshake initiation to {Peer} (retry: {IsRetry})")]
    public static partial void HandshakeInitiated(ILogger logger, NodePublicKey peer, bool isRetry);

    [LoggerMessage(1001, LogLevel.Debug, "Answered handshake initiation from {Peer}")]
    public static partial void HandshakeAnswered(ILogger logger, NodePublicKey peer);

    [LoggerMessage(1002, LogLevel.Information, "Handshake with {Peer} complete")]
    public static partial void HandshakeComplete(ILogger logger, NodePublicKey peer);

    [LoggerMessage(1003, LogLevel.Warning, "Handshake with {Peer} did not complete after {Seconds} s; dropping queued packets")]
    public static partial void HandshakeGaveUp(ILogger logger, NodePublicKey peer, double seconds);

    [LoggerMessage(1004, LogLevel.Debug, "Dropped a datagram from {Source} that failed to process")]
    public static partial void DatagramFailed(ILogger logger, string source, Exception exception);

    [LoggerMessage(1005, LogLevel.Error, "A timer of peer {Peer} failed")]
    public static partial void TimerFailed(ILogger logger, NodePublicKey peer, Exception exception);

    [LoggerMessage(1006, LogLevel.Information, "Peer {Peer} now goes {Path} ({Endpoint})")]
    public static partial void PathChanged(ILogger logger, NodePublicKey peer, PeerPath path, string endpoint);
}
