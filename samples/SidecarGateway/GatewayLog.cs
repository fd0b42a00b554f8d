using Microsoft.Extensions.Logging;

namespace SidecarGateway;

/// <summary>The gateway's log messages (source-generated).</summary>
internal static partial class GatewayLog
{
    [LoggerMessage(1, LogLevel.Debug, "{Method} {Prefix} -> http://{Authority}{Target}: {Status}")]
    public static partial void Proxied(ILogger logger, string method, string? prefix, string authority, string target, int status);

    [LoggerMessage(2, LogLevel.Warning, "{Method} http://{Authority}{Target} failed: {Status} {Detail}")]
    public static partial void UpstreamFailed(ILogger logger, string method, string authority, string target, int status, string detail);

    [LoggerMessage(3, LogLevel.Debug, "{Method} http://{Authority}{Target}: the client went away")]
    public static partial void ClientAborted(ILogger logger, string method, string authority, string target);

    [LoggerMessage(4, LogLevel.Warning, "http://{Authority}{Target}: the body broke off after the response headers were sent: {Reason}")]
    public static partial void BodyBrokeOff(ILogger logger, string authority, string target, string reason);

    [LoggerMessage(5, LogLevel.Information, "Upgrade to {Protocol} via http://{Authority}{Target}: upstream answered {Status}")]
    public static partial void Upgrade(ILogger logger, string protocol, string authority, string target, int status);

    [LoggerMessage(6, LogLevel.Debug, "Tunnel to {Authority} closed: {ToUpstream} B up, {ToClient} B down")]
    public static partial void TunnelClosed(ILogger logger, string authority, long toUpstream, long toClient);

    [LoggerMessage(7, LogLevel.Warning, "Bad request for the gateway: {Reason}")]
    public static partial void BadRoute(ILogger logger, string reason);
}
