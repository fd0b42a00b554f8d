using System.Buffers;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace TunnelMesh.Net.Server.Relay;

/// <summary>
/// The endpoint other replicas open their links to (<c>{prefix}/relay/replica</c>): a WebSocket
/// accepted only with <c>Authorization: Bearer &lt;cluster secret&gt;</c> (else 401, counted and
/// logged; a node token is not the secret). Each binary message is destination key, source key and a
/// WireGuard message; it goes to the destination's connection on this replica, never on to another
/// replica (a frame for a node not attached here is dropped and counted). Without the replica options
/// the endpoint answers 404.
/// </summary>
internal static class ReplicaLinkEndpoint
{
    private const int HeaderLength = 2 * RelayKey.Length;

    /// <summary>Maps the endpoint at <paramref name="pattern"/> and tells the replica relay where it is.</summary>
    public static IEndpointConventionBuilder MapReplicaLink(this IEndpointRouteBuilder endpoints, string pattern, string fullPath)
    {
        endpoints.ServiceProvider.GetRequiredService<ReplicaLinkRoute>().Path = fullPath;
        var branch = endpoints.CreateApplicationBuilder();
        branch.UseWebSockets();
        branch.Run(context => ServeAsync(context, context.RequestServices.GetRequiredService<ReplicaRelay>()));
        return endpoints.Map(pattern, branch.Build()).WithDisplayName("TunnelMesh replica link");
    }

    private static async Task ServeAsync(HttpContext context, ReplicaRelay replicas)
    {
        if (!replicas.Enabled)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        string header = context.Request.Headers.Authorization.ToString();
        string? presented = header.StartsWith("Bearer ", StringComparison.Ordinal) ? header["Bearer ".Length..] : null;
        if (!replicas.IsClusterSecret(presented))
        {
            replicas.Metrics.Refused();
            RelayLog.LinkRefused(replicas.Logger, context.Connection.RemoteIpAddress?.ToString());
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await TypedResults.Problem(
                statusCode: StatusCodes.Status401Unauthorized,
                title: "Not a replica",
                detail: "The replica link needs the cluster secret.").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        string from = context.Request.Headers[ReplicaLink.ReplicaHeader].ToString();
        if (from.Length > 64)
        {
            from = from[..64];
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            DangerousEnableCompression = false,
            KeepAliveInterval = replicas.Hub.Options.KeepAliveInterval,
        }).ConfigureAwait(false);
        RelayLog.LinkAccepted(replicas.Logger, from);
        replicas.LinkArrivedFrom(from);
        try
        {
            await ReceiveAsync(socket, replicas, context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
            RelayLog.LinkEnded(replicas.Logger, from, ex);
        }
    }

    private static async Task ReceiveAsync(WebSocket socket, ReplicaRelay replicas, CancellationToken cancellationToken)
    {
        int limit = HeaderLength + replicas.MaxMessageSize;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(limit);
        try
        {
            while (true)
            {
                int count = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (count == limit)
                    {
                        replicas.Metrics.DroppedOversize();
                        await socket.CloseAsync(WebSocketCloseStatus.MessageTooBig, "frame too large", cancellationToken).ConfigureAwait(false);
                        return;
                    }

                    result = await socket.ReceiveAsync(buffer.AsMemory(count, limit - count), cancellationToken).ConfigureAwait(false);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken).ConfigureAwait(false);
                        return;
                    }

                    count += result.Count;
                }
                while (!result.EndOfMessage);

                if (result.MessageType != WebSocketMessageType.Binary || count <= HeaderLength)
                {
                    replicas.Metrics.DroppedMalformed();
                    continue;
                }

                var frame = buffer.AsSpan(0, count);
                switch (replicas.Hub.DeliverLocal(RelayKey.Read(frame), RelayKey.Read(frame[RelayKey.Length..]), frame[HeaderLength..]))
                {
                    case RelayDelivery.Queued:
                        replicas.Metrics.Received();
                        break;
                    case RelayDelivery.QueueFull:
                        replicas.Metrics.DroppedDestinationQueueFull();
                        break;
                    default:
                        replicas.Metrics.DroppedUnknownDestination();
                        break;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
