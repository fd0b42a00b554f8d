using System.Collections.Concurrent;
using System.Net.WebSockets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Metrics;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Api;

/// <summary>
/// One node's map stream (GET /map, WebSocket): marks the node online, sends a snapshot of every
/// other node at a version no older than its own connection, then a delta for each later state of
/// the <see cref="PeerMapBroadcaster"/> that changes what the node was sent; closes the stream when
/// the node is deleted or expired, and marks it offline when its last stream ends.
/// </summary>
internal sealed class MapStreamHandler
{
    private static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(5);

    private readonly IMeshStore _store;
    private readonly PeerMapBroadcaster _broadcaster;
    private readonly TimeProvider _time;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger _logger;
    private readonly CoordinatorMetrics _metrics;
    private readonly ConcurrentDictionary<long, int> _streamsPerNode = new();

    public MapStreamHandler(
        IMeshStore store,
        PeerMapBroadcaster broadcaster,
        TimeProvider time,
        IHostApplicationLifetime lifetime,
        ILogger<MapStreamHandler> logger,
        CoordinatorMetrics metrics)
    {
        _store = store;
        _broadcaster = broadcaster;
        _time = time;
        _lifetime = lifetime;
        _logger = logger;
        _metrics = metrics;
    }

    public async Task RunAsync(WebSocket socket, NodeRecord node, CancellationToken requestAborted)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, _lifetime.ApplicationStopping);
        CancellationToken ct = cts.Token;
        using MapSubscription subscription = _broadcaster.Subscribe();
        _streamsPerNode.AddOrUpdate(node.Id, 1, static (_, n) => n + 1);
        Log.MapStreamOpened(_logger, node.Id);
        _metrics.MapStreamOpened();
        string reason = "closed by the node";
        Task receiving = Task.CompletedTask;
        try
        {
            await _store.SetOnlineAsync(node.Id, true, _time.GetUtcNow(), ct).ConfigureAwait(false);
            long floor = await _store.GetVersionAsync(ct).ConfigureAwait(false);
            receiving = ReceiveUntilCloseAsync(socket, ct);
            var view = new PeerMapView(node.Id, floor);
            while (true)
            {
                Task<bool> ready = subscription.Updates.WaitToReadAsync(ct).AsTask();
                if (await Task.WhenAny(ready, receiving).ConfigureAwait(false) == receiving)
                {
                    await receiving.ConfigureAwait(false);
                    await CloseAsync(socket, WebSocketCloseStatus.NormalClosure, null, receiving).ConfigureAwait(false);
                    break;
                }

                if (!await ready.ConfigureAwait(false))
                {
                    reason = "coordinator stopping";
                    await CloseAsync(socket, WebSocketCloseStatus.EndpointUnavailable, reason, receiving).ConfigureAwait(false);
                    break;
                }

                if (!subscription.Updates.TryRead(out MapUpdate? update))
                {
                    continue;
                }

                MapStep step = view.Next(update, _broadcaster.Current ?? update);
                if (step.CloseReason is { } closing)
                {
                    reason = closing;
                    await CloseAsync(socket, WebSocketCloseStatus.PolicyViolation, reason, receiving).ConfigureAwait(false);
                    break;
                }

                if (!step.Message.IsEmpty)
                {
                    await socket.SendAsync(step.Message, WebSocketMessageType.Text, endOfMessage: true, ct).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            reason = requestAborted.IsCancellationRequested ? "connection aborted" : "coordinator stopping";
            if (!requestAborted.IsCancellationRequested)
            {
                await CloseAsync(socket, WebSocketCloseStatus.EndpointUnavailable, reason, receiving).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException)
        {
            reason = "connection lost";
            Log.MapStreamFailed(_logger, node.Id, ex);
        }
        finally
        {
            await ObserveAsync(receiving).ConfigureAwait(false);
            _metrics.MapStreamClosed();
            await MarkOfflineIfLastAsync(node.Id).ConfigureAwait(false);
            Log.MapStreamClosed(_logger, node.Id, reason);
        }
    }

    /// <summary>Reads (and drops) what the node sends until it closes; control frames are handled inside.</summary>
    private static async Task ReceiveUntilCloseAsync(WebSocket socket, CancellationToken ct)
    {
        byte[] buffer = new byte[1024];
        while (true)
        {
            WebSocketReceiveResult r = await socket.ReceiveAsync(buffer, ct).ConfigureAwait(false);
            if (r.MessageType == WebSocketMessageType.Close)
            {
                return;
            }
        }
    }

    private async Task CloseAsync(WebSocket socket, WebSocketCloseStatus status, string? description, Task receiving)
    {
        try
        {
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var timeout = new CancellationTokenSource(CloseHandshakeTimeout, _time);
                await socket.CloseOutputAsync(status, description, timeout.Token).ConfigureAwait(false);
                await receiving.WaitAsync(CloseHandshakeTimeout, _time).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException or TimeoutException)
        {
            // The node went away during the close handshake; nothing more to say to it.
        }
    }

    private static async Task ObserveAsync(Task receiving)
    {
        try
        {
            await receiving.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException)
        {
            // Already reported through the stream's close reason.
        }
    }

    private async Task MarkOfflineIfLastAsync(long nodeId)
    {
        int left = _streamsPerNode.AddOrUpdate(nodeId, 0, static (_, n) => n - 1);
        if (left > 0)
        {
            return;
        }

        _streamsPerNode.TryRemove(new KeyValuePair<long, int>(nodeId, 0));
        try
        {
            await _store.SetOnlineAsync(nodeId, false, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);

            // A new stream of the same node may have marked it online in between: it stays online.
            if (_streamsPerNode.TryGetValue(nodeId, out int open) && open > 0)
            {
                await _store.SetOnlineAsync(nodeId, true, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // a store outage must not fail the request's end; the node stays online until the next stream
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.MapStreamFailed(_logger, nodeId, ex);
        }
    }
}
