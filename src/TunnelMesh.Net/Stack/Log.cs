using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Stack;

/// <summary>Log messages of the stack (source-generated). Per-packet events are at Trace level.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1100, Level = LogLevel.Trace, Message = "Dropped an inbound packet: {Reason}")]
    public static partial void PacketDropped(ILogger logger, DropReason reason);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Error, Message = "Unexpected error while handling an inbound packet; it was dropped")]
    public static partial void InboundFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Debug, Message = "UDP port {Port} bound")]
    public static partial void UdpBound(ILogger logger, int port);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Debug, Message = "UDP port {Port} closed")]
    public static partial void UdpClosed(ILogger logger, int port);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Trace, Message = "ICMP {Type} code {Code} received from {Source:X8}")]
    public static partial void IcmpErrorReceived(ILogger logger, byte type, byte code, uint source);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Trace, Message = "ICMP error not sent: rate limit")]
    public static partial void IcmpErrorRateLimited(ILogger logger);
}
