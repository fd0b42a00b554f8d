using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Server.Metrics;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Api;

/// <summary>
/// The one loop that watches the store for the whole coordinator: it waits for the map version to
/// move (<see cref="IMeshStore.WaitForChangeAsync"/>, which sees changes by any replica), reads the
/// node list once, diffs it against the list it read before and serializes that delta once
/// (<see cref="MapUpdateBuilder"/>), then offers the one <see cref="MapUpdate"/> to every map stream,
/// which sends the same bytes. A change costs O(nodes) here plus O(1) per stream.
/// Updates are built one after another, so every subscriber sees them in version order, each
/// one's <see cref="MapUpdate.PreviousVersion"/> being the version of the one before.
/// </summary>
internal sealed class PeerMapBroadcaster : BackgroundService
{
    private readonly IMeshStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly HashSet<MapSubscription> _subscriptions = [];
    private readonly MapUpdateBuilder _builder;
    private volatile MapUpdate? _current;
    private long _deltasSerialized;

    public PeerMapBroadcaster(IMeshStore store, CoordinatorSettings settings, TimeProvider time, ILogger<PeerMapBroadcaster> logger, CoordinatorMetrics metrics)
    {
        _store = store;
        _time = time;
        _logger = logger;
        _builder = new MapUpdateBuilder(settings);
        metrics.ObserveMap(this);
    }

    /// <summary>The latest update, or null before the first.</summary>
    public MapUpdate? Current => _current;

    /// <summary>Deltas serialized so far: one per version step that changed a visible node, however many streams.</summary>
    internal long DeltasSerialized => Interlocked.Read(ref _deltasSerialized);

    /// <summary>Subscribes to states from now on (the current one first, when there is one).</summary>
    public MapSubscription Subscribe()
    {
        var s = new MapSubscription(this);
        lock (_gate)
        {
            _subscriptions.Add(s);

            // Under the lock, so a state published concurrently cannot be offered before this older one.
            if (_current is { } c)
            {
                s.Offer(c);
            }
        }

        return s;
    }

    internal void Unsubscribe(MapSubscription s)
    {
        lock (_gate)
        {
            _subscriptions.Remove(s);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        long seen = -1;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                long version = await _store.WaitForChangeAsync(seen, stoppingToken).ConfigureAwait(false);
                IReadOnlyList<NodeRecord> nodes = await _store.ListNodesAsync(stoppingToken).ConfigureAwait(false);
                seen = version;
                MapUpdate update = _builder.Next(version, nodes);
                Publish(update);

                // After publishing, so that whoever reads the count then Current sees every counted update.
                Interlocked.Exchange(ref _deltasSerialized, _builder.DeltasSerialized);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
#pragma warning disable CA1031 // the loop must survive a store outage; it logs and retries
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.BroadcastFailed(_logger, ex);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), _time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        lock (_gate)
        {
            foreach (MapSubscription s in _subscriptions)
            {
                s.Complete();
            }
        }
    }

    private void Publish(MapUpdate update)
    {
        lock (_gate)
        {
            _current = update;
            foreach (MapSubscription s in _subscriptions)
            {
                s.Offer(update);
            }
        }
    }
}

/// <summary>
/// One map stream's queue of updates, bounded: when the stream falls <see cref="Capacity"/> updates
/// behind, the oldest is dropped, the chain of versions breaks, and the stream sends a fresh snapshot
/// instead of the deltas it missed (<see cref="PeerMapView"/>).
/// </summary>
internal sealed class MapSubscription : IDisposable
{
    /// <summary>Updates a stream may have pending before it falls back to a snapshot.</summary>
    public const int Capacity = 16;

    private readonly PeerMapBroadcaster? _owner;
    private readonly Channel<MapUpdate> _updates = Channel.CreateBounded<MapUpdate>(
        new BoundedChannelOptions(Capacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = false });

    internal MapSubscription(PeerMapBroadcaster? owner) => _owner = owner;

    /// <summary>The updates in version order (gaps where the stream fell behind).</summary>
    public ChannelReader<MapUpdate> Updates => _updates.Reader;

    internal void Offer(MapUpdate update) => _updates.Writer.TryWrite(update);

    internal void Complete() => _updates.Writer.TryComplete();

    public void Dispose()
    {
        _owner?.Unsubscribe(this);
        _updates.Writer.TryComplete();
    }
}
