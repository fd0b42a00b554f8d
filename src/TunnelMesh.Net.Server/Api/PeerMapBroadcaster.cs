using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Api;

/// <summary>The whole node list at one map version.</summary>
/// <param name="Version">The store's map version when the list was read (the list is at least that new).</param>
/// <param name="Nodes">Every node, expired ones too.</param>
internal sealed record MapState(long Version, IReadOnlyList<NodeRecord> Nodes);

/// <summary>
/// The one loop that watches the store for the whole coordinator: it waits for the map version to
/// move (<see cref="IMeshStore.WaitForChangeAsync"/>, which sees changes by any replica), reads the
/// node list once and offers it to every map stream. Each stream diffs it against what it last sent.
/// States are read one after another, so every subscriber sees them in version order.
/// </summary>
internal sealed class PeerMapBroadcaster : BackgroundService
{
    private readonly IMeshStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly HashSet<MapSubscription> _subscriptions = [];
    private volatile MapState? _current;

    public PeerMapBroadcaster(IMeshStore store, TimeProvider time, ILogger<PeerMapBroadcaster> logger)
    {
        _store = store;
        _time = time;
        _logger = logger;
    }

    /// <summary>The latest state read, or null before the first.</summary>
    public MapState? Current => _current;

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
                Publish(new MapState(version, nodes));
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

    private void Publish(MapState state)
    {
        lock (_gate)
        {
            _current = state;
            foreach (MapSubscription s in _subscriptions)
            {
                s.Offer(state);
            }
        }
    }
}

/// <summary>One map stream's view of the broadcaster: only the newest state waits (older ones are superseded).</summary>
internal sealed class MapSubscription : IDisposable
{
    private readonly PeerMapBroadcaster _owner;
    private readonly Channel<MapState> _states = Channel.CreateBounded<MapState>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = false });

    internal MapSubscription(PeerMapBroadcaster owner) => _owner = owner;

    /// <summary>The states, newest only.</summary>
    public ChannelReader<MapState> States => _states.Reader;

    internal void Offer(MapState state) => _states.Writer.TryWrite(state);

    internal void Complete() => _states.Writer.TryComplete();

    public void Dispose()
    {
        _owner.Unsubscribe(this);
        _states.Writer.TryComplete();
    }
}
