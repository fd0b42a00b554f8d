using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Relay;

/// <summary>Where <c>MapMeshCoordinator</c> mapped the replica-link endpoint (its path below the replica's URL).</summary>
internal sealed class ReplicaLinkRoute
{
    public string Path { get; set; } = "/api/v1/relay/replica";
}

/// <summary>
/// The relay across coordinator replicas (docs/RELAY.md). When <see cref="MeshCoordinatorOptions.ReplicaUrl"/>
/// and <see cref="MeshCoordinatorOptions.ClusterSecret"/> are set, this replica registers itself in
/// the store (a random id, its replica-link URL, a heartbeat), records there which nodes attach to
/// its relay, and reads back where every other node is attached. A frame whose destination is not
/// attached here goes over a long-lived WebSocket link to the replica that holds it; frames arriving
/// on links from other replicas (<see cref="ReplicaLinkEndpoint"/>) go to nodes attached here.
/// Frames never pass through the store.
/// </summary>
/// <remarks>
/// One loop does the store work: it writes attachment changes as they happen, reads others' changes
/// every <see cref="PollInterval"/>, and every <see cref="MeshCoordinatorOptions.ReplicaHeartbeatInterval"/>
/// refreshes its registration (it expires after three intervals), re-reads the live replicas, opens
/// and closes links to match, and re-records any local node the table shows elsewhere (so a node
/// that moved back and forth ends up recorded where its connection is).
/// </remarks>
internal sealed class ReplicaRelay : BackgroundService, IRelayReplicaBridge
{
    /// <summary>How often attachment changes of other replicas are read.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);

    private const int ReadBatch = 10_000;

    private readonly RelayHub _hub;
    private readonly IMeshStore _store;
    private readonly MeshCoordinatorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, ReplicaLink> _links = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<RelayKey, bool> _pending = new();
    private readonly ChangeSignal _pendingSignal = new();
    private readonly byte[]? _secretHash;
    private IRelayDirectory? _directory;
    private readonly ReplicaLinkRoute _route;
    private Uri? _linkUrl;
    private int _refreshRequested;

    public ReplicaRelay(
        RelayHub hub,
        IMeshStore store,
        IOptions<MeshCoordinatorOptions> options,
        ReplicaRelayMetrics metrics,
        ReplicaLinkRoute route,
        TimeProvider? time = null,
        ILogger<ReplicaRelay>? logger = null)
    {
        _hub = hub;
        _store = store;
        _options = options.Value;
        Metrics = metrics;
        _route = route;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        Routes = new ReplicaRoutes(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)));
        if (_options.ClusterSecret is { } secret)
        {
            _secretHash = SHA256.HashData(Encoding.UTF8.GetBytes(secret));
        }
    }

    /// <summary>Whether this coordinator runs as one of several replicas.</summary>
    public bool Enabled => _options.ReplicaUrl is not null && _secretHash is not null;

    /// <summary>This replica's id (random, new at each start).</summary>
    public string Id => Routes.SelfId;

    /// <summary>The routing table.</summary>
    public ReplicaRoutes Routes { get; }

    public ReplicaRelayMetrics Metrics { get; }

    /// <summary>The outgoing links now, by replica id.</summary>
    internal IReadOnlyDictionary<string, ReplicaLink> Links => _links;

    internal ILogger Logger => _logger;

    internal RelayHub Hub => _hub;

    internal int MaxMessageSize => _hub.Options.MaxMessageSize;

    /// <summary>Whether <paramref name="presented"/> is the cluster secret (compared as SHA-256 hashes, in constant time).</summary>
    public bool IsClusterSecret(string? presented)
    {
        if (_secretHash is null || presented is null)
        {
            return false;
        }

        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(presented), hash);
        return CryptographicOperations.FixedTimeEquals(hash, _secretHash);
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return Task.CompletedTask;
        }

        _directory = _store as IRelayDirectory ?? throw new InvalidOperationException(
            $"{nameof(MeshCoordinatorOptions)}.{nameof(MeshCoordinatorOptions.ReplicaUrl)}: the relay across replicas needs the PostgreSQL store " +
            $"({nameof(MeshCoordinatorOptions.PostgresConnectionString)}); the store in use is {_store.GetType().Name}.");
        _linkUrl = LinkUrl(new Uri(_options.ReplicaUrl!, UriKind.Absolute), _route.Path);
        _hub.Replicas = this;
        Metrics.Enable();
        RelayLog.ReplicaStarted(_logger, Id, _linkUrl);
        return base.StartAsync(cancellationToken);
    }

    /// <summary><paramref name="baseUrl"/> with <paramref name="path"/> appended, as ws:// or wss://.</summary>
    internal static Uri LinkUrl(Uri baseUrl, string path)
    {
        var b = new UriBuilder(baseUrl)
        {
            Scheme = baseUrl.Scheme is "https" or "wss" ? "wss" : "ws",
            Path = baseUrl.AbsolutePath.TrimEnd('/') + "/" + path.TrimStart('/'),
        };
        return b.Uri;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        DateTimeOffset nextHeartbeat = DateTimeOffset.MinValue;
        DateTimeOffset lastFailureLogged = DateTimeOffset.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            Task woken = _pendingSignal.Next;
            try
            {
                await FlushPendingAsync(stoppingToken).ConfigureAwait(false);
                if (_time.GetUtcNow() >= nextHeartbeat || Interlocked.Exchange(ref _refreshRequested, 0) != 0)
                {
                    await HeartbeatAsync(stoppingToken).ConfigureAwait(false);
                    nextHeartbeat = _time.GetUtcNow() + _options.ReplicaHeartbeatInterval;
                }

                await PollAttachmentsAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
#pragma warning disable CA1031 // a store outage must not stop the replica; the next round tries again
            catch (Exception ex)
#pragma warning restore CA1031
            {
                // At most one warning per heartbeat interval while the store stays out of reach.
                DateTimeOffset now = _time.GetUtcNow();
                if (now - lastFailureLogged >= _options.ReplicaHeartbeatInterval)
                {
                    lastFailureLogged = now;
                    RelayLog.DirectoryFailed(_logger, ex);
                }
            }

            try
            {
                await Task.WhenAny(woken, Task.Delay(PollInterval, _time, stoppingToken)).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private async Task FlushPendingAsync(CancellationToken cancellationToken)
    {
        foreach (var key in _pending.Keys)
        {
            if (!_pending.TryRemove(key, out bool attached))
            {
                continue;
            }

            // What the hub says now wins over what was queued (an attach and a detach may both have happened).
            attached = _hub.IsConnected(key);
            try
            {
                await _directory!.SetAttachmentAsync(key.ToArray(), Id, attached, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                _pending.TryAdd(key, attached); // written on the next round
                throw;
            }
        }
    }

    private async Task HeartbeatAsync(CancellationToken cancellationToken)
    {
        DateTimeOffset now = _time.GetUtcNow();
        await _directory!.HeartbeatAsync(Id, _linkUrl!, now + (3 * _options.ReplicaHeartbeatInterval), cancellationToken).ConfigureAwait(false);
        var replicas = await _directory.ListReplicasAsync(now, cancellationToken).ConfigureAwait(false);
        Routes.SetReplicas(replicas);

        var live = new HashSet<string>(StringComparer.Ordinal);
        foreach (var replica in Routes.OtherReplicas)
        {
            live.Add(replica.Id);
            if (!_links.ContainsKey(replica.Id))
            {
                var link = new ReplicaLink(replica.Id, replica.LinkUrl, Id, _options.ClusterSecret!, _options.ReplicaLinkQueueCapacity, _hub.Options.KeepAliveInterval, Metrics, _logger);
                _links[replica.Id] = link;
                link.Start();
            }
        }

        foreach (var (id, link) in _links)
        {
            if (!live.Contains(id) && _links.TryRemove(id, out _))
            {
                RelayLog.LinkClosed(_logger, id);
                await link.DisposeAsync().ConfigureAwait(false);
            }
        }

        // Local nodes the table places elsewhere (or nowhere) are recorded here again, and nodes
        // recorded here that are gone are recorded as gone (a write that failed is made good).
        foreach (var key in _hub.LocalKeys)
        {
            if (Routes.AttachedTo(key) != Id)
            {
                _pending[key] = true;
            }
        }

        foreach (var key in Routes.KeysAttachedTo(Id))
        {
            if (!_hub.IsConnected(key))
            {
                _pending[key] = false;
            }
        }

        await FlushPendingAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task PollAttachmentsAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var changes = await _directory!.ReadAttachmentsAsync(Routes.Sequence, ReadBatch, cancellationToken).ConfigureAwait(false);
            Routes.Apply(changes);
            if (changes.Count < ReadBatch)
            {
                return;
            }
        }
    }

    /// <summary>
    /// A replica this one has no link to opened a link here (it just started): re-read the live
    /// replicas now instead of at the next heartbeat, so the link back opens at once.
    /// </summary>
    public void LinkArrivedFrom(string replicaId)
    {
        if (!_links.ContainsKey(replicaId) && Interlocked.Exchange(ref _refreshRequested, 1) == 0)
        {
            _pendingSignal.Notify();
        }
    }

    /// <inheritdoc/>
    public void Attached(RelayKey key)
    {
        _pending[key] = true;
        _pendingSignal.Notify();
    }

    /// <inheritdoc/>
    public void Detached(RelayKey key)
    {
        _pending[key] = false;
        _pendingSignal.Notify();
    }

    /// <inheritdoc/>
    public bool TryForward(RelayKey destination, RelayKey source, ReadOnlySpan<byte> message)
    {
        if (Routes.Lookup(destination, _time.GetUtcNow()) is not { } replica || !_links.TryGetValue(replica.Id, out var link))
        {
            return false;
        }

        link.TryEnqueue(destination, source, message); // counts a drop itself
        return true;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (!Enabled || _directory is null)
        {
            return;
        }

        _hub.Replicas = null;
        foreach (var id in _links.Keys)
        {
            if (_links.TryRemove(id, out var link))
            {
                await link.DisposeAsync().ConfigureAwait(false);
            }
        }

        try
        {
            await _directory.RemoveReplicaAsync(Id, cancellationToken).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // best effort: the registration expires anyway
        catch (Exception ex)
#pragma warning restore CA1031
        {
            RelayLog.DirectoryFailed(_logger, ex);
        }
    }
}
