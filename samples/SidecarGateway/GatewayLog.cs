using Microsoft.Extensions.Logging;

namespace SidecarGateway;

/// <summary>The gateway's log messages (source-generated).</summary>
internal static partial class GatewayLog
{
    [LoggerMessage(1, LogLevel.Debug, "{Method} {Prefix} -> http://{Authority}{Target}: {Status}")]
    public static partial void Proxied(ILogger logger, string method, string? prefix, string authority, string target, int status);

    [LoggerMessage(2, LogLevel.Warning, "{Method} http://{Authority}{Target} failed: {Status} {Detail}")]
    public static partial void UpstreamFailed(ILogger logger, string method, string authority, string target, int status, string detail);

    [LoggerMessage(3, LogLevel.Debug, "{Method} http://{Authority}{Target}: the client went away or sent a bad body ({Error})")]
    public static partial void ClientAborted(ILogger logger, string method, string authority, string target, string error);

    [LoggerMessage(4, LogLevel.Warning, "http://{Authority}{Target}: broke off after the response headers were sent ({Error}): {Reason}")]
    public static partial void BodyBrokeOff(ILogger logger, string authority, string target, string error, string reason);

    [LoggerMessage(7, LogLevel.Warning, "Bad request for the gateway: {Reason}")]
    public static partial void BadRoute(ILogger logger, string reason);
}
