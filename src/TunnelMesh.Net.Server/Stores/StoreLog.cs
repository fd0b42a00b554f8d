using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Server.Stores;

/// <summary>Log messages of the stores (events 4100–4199).</summary>
internal static partial class StoreLog
{
    [LoggerMessage(EventId = 4100, Level = LogLevel.Warning, Message = "The PostgreSQL change listener on channel {Channel} failed; reconnecting in a second (the version poll covers the gap)")]
    public static partial void ListenerFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(EventId = 4101, Level = LogLevel.Warning, Message = "Reading the map version failed; trying again at the next poll")]
    public static partial void VersionPollFailed(ILogger logger, Exception exception);
}
