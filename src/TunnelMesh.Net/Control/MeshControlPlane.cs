using System.Buffers;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Dns;
using TunnelMesh.Net.WireGuard;
using TunnelMesh.Net.WireGuard.Crypto;

namespace TunnelMesh.Net.Control;

/// <summary>
/// The node's side of the coordinator: joins (with the auth key, or again with the saved node
/// token), keeps the state directory, and runs one background loop that holds the peer map
/// WebSocket (reconnecting with bounded exponential backoff and jitter), applies snapshots and
/// deltas to the running WireGuard device and the name table, and reports the node's endpoints.
/// </summary>
/// <remarks>
/// Threading: the map is applied by one writer at a time (the start, then the loop) under
/// <see cref="_applyGate"/>; readers (<see cref="Peers"/>, status) see an immutable dictionary
/// published with a release write. Nothing the coordinator sends can throw out of the loop: a bad
/// message or entry is logged and skipped.
/// </remarks>
internal sealed class MeshControlPlane : IAsyncDisposable
{
    internal static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);
    internal static readonly TimeSpan WebSocketKeepAlive = TimeSpan.FromSeconds(15);
    internal static readonly TimeSpan EndpointCheckInterval = TimeSpan.FromSeconds(30);
    internal const int MaxMapMessageBytes = 64 * 1024 * 1024;

    private readonly MeshNodeConfigValidator.ControlConfig _config;
    private readonly NodeStateStore _store;
    private readonly NodePrivateKey _key;
    private readonly string _keyText;
    private readonly IReadOnlySet<NodePublicKey> _staticPeers;
    private readonly MeshNameTable _names;
    private readonly NodeCandidates _candidates;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Action _changed;
    private readonly ControlClient _client;
    private readonly Lock _applyGate = new();
    private readonly SemaphoreSlim _endpointSignal = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private IReadOnlyDictionary<NodePublicKey, MeshNodeInfo> _peers = new Dictionary<NodePublicKey, MeshNodeInfo>();
    private SavedSelf? _self;
    private string? _token;

    /// <summary>The node token now (null before the first join); the relay connects with it.</summary>
    public string? Token => Volatile.Read(ref _token);
    private bool _joined;
    private PeerMapMessage? _pendingMap;
    private WireGuardDevice? _device;
    private CancellationTokenSource? _connection;
    private readonly HashSet<string> _unusableLogged = new(StringComparer.Ordinal);
    private long _unusablePeers;
    private int _reconnectNow;
    private IReadOnlyList<string>? _reportedEndpoints;
    private Task? _loop;
    private long _version;
    private int _connected;
    private int _disposed;

    public MeshControlPlane(
        MeshNodeConfigValidator.ControlConfig config,
        NodeStateStore store,
        NodePrivateKey key,
        IReadOnlySet<NodePublicKey> staticPeers,
        MeshNameTable names,
        Func<IReadOnlyList<string>> localEndpoints,
        TimeProvider time,
        ILogger logger,
        Action changed)
    {
        _config = config;
        _store = store;
        _key = key;
        _keyText = key.PublicKey.ToString();
        _staticPeers = staticPeers;
        _names = names;
        _candidates = new NodeCandidates(localEndpoints, time);
        _time = time;
        _logger = logger;
        _changed = changed;
        _client = new ControlClient(config.Url, RequestTimeout);
    }

    /// <summary>The node as the coordinator recorded it (after <see cref="JoinOrRestoreAsync"/>).</summary>
    public SavedSelf Self => Volatile.Read(ref _self) ?? throw new InvalidOperationException("The node has not joined yet.");

    /// <summary>The peers from the map, by key (self, expired and static-key entries left out).</summary>
    public IReadOnlyDictionary<NodePublicKey, MeshNodeInfo> Peers => Volatile.Read(ref _peers);

    /// <summary>Whether the map stream is connected now.</summary>
    public bool Connected => Volatile.Read(ref _connected) != 0;

    /// <summary>The version of the last map message applied.</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>
    /// Extra endpoints to publish beside the local ones (the reflexive endpoint STUN learned);
    /// setting them reports the new list to the coordinator.
    /// </summary>
    internal void SetExtraEndpoints(IReadOnlyList<string> endpoints) => SetExtraEndpoints(endpoints, CandidateKind.Reflexive);

    /// <summary>
    /// Extra endpoints of one <paramref name="kind"/> (reflexive from STUN, port-mapped from a router),
    /// replacing the earlier ones of that kind; reports the new list to the coordinator.
    /// </summary>
    internal void SetExtraEndpoints(IReadOnlyList<string> endpoints, CandidateKind kind)
    {
        _candidates.SetExtra(endpoints, kind);
        SignalEndpoints();
    }

    /// <summary>This node's candidates with their kinds, as published (<see cref="NodeCandidates.Current"/>).</summary>
    internal IReadOnlyList<PathCandidate> CurrentCandidates() => _candidates.Current();

    /// <summary>Peers of the map left out because no node could use them (a small-order or non-canonical key); each is logged once.</summary>
    internal long UnusablePeersSkipped => Interlocked.Read(ref _unusablePeers);

    private void SkipUnusable(string publicKey, string reason)
    {
        Interlocked.Increment(ref _unusablePeers);
        lock (_unusableLogged)
        {
            if (_unusableLogged.Count >= 1024 || !_unusableLogged.Add(publicKey))
            {
                return; // logged already (or the set is full: a flood of bad keys does not grow it)
            }
        }

        ControlLog.PeerSkipped(_logger, publicKey, reason);
    }

    /// <summary>
    /// The network changed: the endpoints are checked and reported again at once. When one of the
    /// host's addresses went away, the map stream and every pooled HTTP connection may be bound to it
    /// and dead without a word (until the 10 s keepalive timeout, or a request's timeout): they are
    /// dropped, and the loop reconnects at once, from the addresses the host has now.
    /// </summary>
    internal void OnNetworkChanged(bool addressLost = false)
    {
        _candidates.Invalidate();
        if (addressLost && Volatile.Read(ref _disposed) == 0)
        {
            ControlLog.AddressLost(_logger);
            Volatile.Write(ref _reconnectNow, 1);
            _client.ResetConnections();
            try
            {
                Volatile.Read(ref _connection)?.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // That connection just ended; the loop is reconnecting anyway.
            }
        }

        SignalEndpoints();
    }

    /// <summary>
    /// The external endpoint of the node's port mapping (NAT-PMP/PCP/UPnP), published before the other
    /// extra endpoints; null removes it. Setting it reports the new list to the coordinator.
    /// </summary>
    internal void SetPortMappedEndpoint(string? endpoint) => SetExtraEndpoints(endpoint is null ? [] : [endpoint], CandidateKind.PortMapped);

    /// <summary>
    /// Joins the coordinator (with the saved token, else the auth key). When the coordinator cannot be
    /// reached (or answers 5xx) and the state directory holds an earlier join, starts from that
    /// instead; the loop joins later. A refusal (4xx) is thrown as a <see cref="MeshControlException"/>.
    /// </summary>
    public async Task<SavedSelf> JoinOrRestoreAsync(CancellationToken cancellationToken)
    {
        _token = _store.LoadToken();
        if (_token is null && _config.AuthKey is null)
        {
            throw new MeshConfigurationException(
                $"{nameof(MeshNodeOptions)}.{nameof(MeshNodeOptions.AuthKey)}",
                _store.Directory is null
                    ? "is required to join the coordinator (no StateDirectory holds a node token)."
                    : $"is required: the state directory {_store.Directory} holds no node token from an earlier join.");
        }

        var saved = _store.LoadSelf();
        try
        {
            var response = await JoinAsync(cancellationToken).ConfigureAwait(false);
            Adopt(response);
            _pendingMap = response.Map;
        }
        catch (Exception ex) when (saved is not null && IsTransient(ex, cancellationToken))
        {
            ControlLog.StartingFromState(_logger, _store.Directory!, ex.Message);
            if (!string.Equals(saved.Self.PublicKey, _keyText, StringComparison.Ordinal))
            {
                throw new MeshConfigurationException($"{nameof(MeshNodeOptions)}.{nameof(MeshNodeOptions.StateDirectory)}", "the saved join is for another node key.");
            }

            Volatile.Write(ref _self, saved);
            _pendingMap = _store.LoadMap() ?? new PeerMapMessage(PeerMapMessageType.Snapshot, 0, []);
        }
        catch (HttpRequestException ex)
        {
            throw new MeshControlException(null, $"{_config.Url} could not be reached ({ex.Message}) and no earlier join is saved to start from", ex);
        }
        catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new MeshControlException(null, $"{_config.Url} did not answer within {RequestTimeout.TotalSeconds:0} s and no earlier join is saved to start from", ex);
        }

        return Self;
    }

    /// <summary>Binds the running device and applies the map from the join (or the saved one).</summary>
    public void Attach(WireGuardDevice device)
    {
        _device = device;
        if (_pendingMap is { } map)
        {
            _pendingMap = null;
            Apply(map, persist: _joined);
        }
        else
        {
            UpdateNames();
        }
    }

    /// <summary>Starts the background loop (map stream, reconnects, endpoint reports).</summary>
    public void StartLoop() => _loop = RunAsync(_stop.Token);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stopped, as asked.
            }
        }

        _client.Dispose();
        _stop.Dispose();
        _endpointSignal.Dispose();
    }

    // ------------------------------------------------------------------ join

    private async Task<JoinResponse> JoinAsync(CancellationToken cancellationToken)
    {
        var endpoints = CurrentEndpoints();
        if (_token is { } token)
        {
            try
            {
                return await _client.JoinAsync(new JoinRequest(null, _keyText, _config.Hostname, endpoints, token, _config.Ephemeral), cancellationToken).ConfigureAwait(false);
            }
            catch (MeshControlException ex) when (ex.IsUnauthorized && _config.AuthKey is not null)
            {
                ControlLog.TokenRefused(_logger, ex.Reason);
                ForgetToken();
            }
        }

        if (_config.AuthKey is not { } authKey)
        {
            throw new MeshControlException(null, "the node token was refused and no auth key is configured to join again");
        }

        return await _client.JoinAsync(new JoinRequest(authKey, _keyText, _config.Hostname, endpoints, null, _config.Ephemeral), cancellationToken).ConfigureAwait(false);
    }

    private void Adopt(JoinResponse response)
    {
        if (response.Self is null || response.Mesh is null || string.IsNullOrEmpty(response.NodeToken))
        {
            throw new MeshControlException(HttpStatusCode.OK, "the join answer lacks the node, the mesh or the token");
        }

        if (!string.Equals(response.Self.PublicKey, _keyText, StringComparison.Ordinal))
        {
            throw new MeshControlException(HttpStatusCode.OK, "the join answer is for another node key");
        }

        var previous = Volatile.Read(ref _self);
        if (previous is not null && !previous.Self.Addresses.SequenceEqual(response.Self.Addresses))
        {
            // The stack's address is fixed while it runs; the coordinator keeps a key's address, so this is rare.
            ControlLog.AddressChanged(_logger, string.Join(", ", previous.Self.Addresses), string.Join(", ", response.Self.Addresses));
        }

        var self = new SavedSelf(response.Self, response.Mesh);
        if (!string.Equals(_token, response.NodeToken, StringComparison.Ordinal))
        {
            _store.SaveToken(response.NodeToken);
            _token = response.NodeToken;
        }

        _store.SaveSelf(self);
        Volatile.Write(ref _self, self);
        _joined = true;
        ControlLog.Joined(_logger, response.Self.Name, string.Join(", ", response.Self.Addresses), response.Map?.Peers?.Count ?? 0);
    }

    private void ForgetToken()
    {
        _token = null;
        _joined = false;
        try
        {
            _store.DeleteToken();
        }
        catch (IOException ex)
        {
            ControlLog.StateWriteFailed(_logger, ex.Message);
        }
    }

    private static bool IsTransient(Exception ex, CancellationToken cancellationToken) => ex switch
    {
        HttpRequestException => true,
        TaskCanceledException => !cancellationToken.IsCancellationRequested, // the request timed out
        MeshControlException m => m.StatusCode is null or >= HttpStatusCode.InternalServerError or HttpStatusCode.TooManyRequests,
        _ => false,
    };

    // ------------------------------------------------------------------ the loop

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        int failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            bool received = false;
            try
            {
                if (!_joined)
                {
                    var response = await JoinAsync(cancellationToken).ConfigureAwait(false);
                    Adopt(response);
                    Apply(response.Map, persist: true);
                }

                using var socket = await _client.ConnectMapAsync(_token!, WebSocketKeepAlive, cancellationToken).ConfigureAwait(false);
                ControlLog.MapConnected(_logger, _client.MapUri);
                received = await RunConnectionAsync(socket, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (MeshControlException ex) when (ex.IsUnauthorized)
            {
                ControlLog.TokenRefused(_logger, ex.Reason);
                if (_config.AuthKey is not null)
                {
                    ForgetToken();
                }
                else
                {
                    _joined = false;
                }
            }
#pragma warning disable CA1031 // the control loop must outlive any failure of the coordinator or the network
            catch (Exception ex)
#pragma warning restore CA1031
            {
                ControlLog.ControlFailed(_logger, ex.GetType().Name, ex.Message);
            }
            finally
            {
                SetConnected(false);
            }

            failures = received ? 0 : failures + 1;
            var delay = Backoff(failures);
            if (Interlocked.Exchange(ref _reconnectNow, 0) != 0)
            {
                failures = 0;
                delay = TimeSpan.Zero; // dropped on purpose (an address went away): not a failure of the coordinator
            }

            ControlLog.Reconnecting(_logger, delay.TotalSeconds);
            try
            {
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Exponential backoff from 0.5 s, capped at 30 s, with jitter (half to all of the step).</summary>
    internal static TimeSpan Backoff(int failures)
    {
        double step = Math.Min(30.0, 0.5 * Math.Pow(2, Math.Clamp(failures - 1, 0, 16)));
        double jitter = 0.5 + (RandomNumberGenerator.GetInt32(0, 1001) / 2000.0);
        return TimeSpan.FromSeconds(step * jitter);
    }

    // Returns whether any map message arrived (the connection worked, so backoff starts over).
    private async Task<bool> RunConnectionAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        using var connection = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Volatile.Write(ref _connection, connection);
        _reportedEndpoints = null;
        var reporter = ReportEndpointsAsync(connection.Token);
        bool received = false;
        try
        {
            return await ReceiveMapAsync(socket, () => received = true, connection.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (connection.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return received; // dropped by OnNetworkChanged: reconnect
        }
        finally
        {
            Interlocked.CompareExchange(ref _connection, null, connection);
            await connection.CancelAsync().ConfigureAwait(false);
            try
            {
                await reporter.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The connection ended.
            }

            if (socket.State == WebSocketState.Open && !cancellationToken.IsCancellationRequested)
            {
                using var closeTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                try
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, closeTimeout.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
                {
                    // Closing a broken socket: nothing to do.
                }
            }
        }
    }

    private async Task<bool> ReceiveMapAsync(ClientWebSocket socket, Action onReceived, CancellationToken cancellationToken)
    {
        bool received = false;
        var buffer = new ArrayBufferWriter<byte>(64 * 1024);
        while (true)
        {
            buffer.ResetWrittenCount();
            ValueWebSocketReceiveResult result;
            do
            {
                if (buffer.WrittenCount >= MaxMapMessageBytes)
                {
                    ControlLog.BadMapMessage(_logger, $"a message exceeded {MaxMapMessageBytes} bytes");
                    await socket.CloseOutputAsync(WebSocketCloseStatus.MessageTooBig, "too big", cancellationToken).ConfigureAwait(false);
                    return received;
                }

                result = await socket.ReceiveAsync(buffer.GetMemory(16 * 1024), cancellationToken).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    ControlLog.MapClosed(_logger, socket.CloseStatus?.ToString() ?? "none", socket.CloseStatusDescription ?? "");
                    return received;
                }

                buffer.Advance(result.Count);
            }
            while (!result.EndOfMessage);

            if (result.MessageType != WebSocketMessageType.Text)
            {
                ControlLog.BadMapMessage(_logger, "a binary message");
                continue;
            }

            PeerMapMessage? message;
            try
            {
                message = JsonSerializer.Deserialize<PeerMapMessage>(buffer.WrittenSpan, ControlJson.Options);
            }
            catch (JsonException ex)
            {
                ControlLog.BadMapMessage(_logger, ex.Message);
                continue;
            }

            if (message is null)
            {
                ControlLog.BadMapMessage(_logger, "null");
                continue;
            }

            if (!received)
            {
                received = true;
                onReceived();
                SetConnected(true);
            }

            Apply(message, persist: true);
        }
    }

    private async Task ReportEndpointsAsync(CancellationToken cancellationToken)
    {
        int failures = 0;
        while (true)
        {
            var endpoints = CurrentEndpoints();
            var reported = _reportedEndpoints;
            if (reported is null || !reported.SequenceEqual(endpoints, StringComparer.Ordinal))
            {
                try
                {
                    await _client.UpdateEndpointsAsync(_token!, endpoints, cancellationToken).ConfigureAwait(false);
                    _reportedEndpoints = endpoints;
                    failures = 0;
                    ControlLog.EndpointsReported(_logger, string.Join(", ", endpoints));
                }
                catch (Exception ex) when (ex is HttpRequestException or MeshControlException or ObjectDisposedException || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
                {
                    ControlLog.EndpointReportFailed(_logger, ex.Message);
                    failures++;
                }
            }

            // After a failure (a dead pooled connection, the coordinator restarting) try again soon,
            // 1 s doubling, rather than at the next 30 s check: peers probe what is published.
            var wait = failures == 0 ? EndpointCheckInterval : TimeSpan.FromSeconds(Math.Min(EndpointCheckInterval.TotalSeconds, Math.Pow(2, Math.Min(failures - 1, 5))));
            await _endpointSignal.WaitAsync(wait, cancellationToken).ConfigureAwait(false);
        }
    }

    private IReadOnlyList<string> CurrentEndpoints() => _candidates.Endpoints();

    private void SignalEndpoints()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        try
        {
            if (_endpointSignal.CurrentCount == 0)
            {
                _endpointSignal.Release();
            }
        }
        catch (SemaphoreFullException)
        {
            // Already signalled.
        }
    }

    private void SetConnected(bool connected)
    {
        if (Interlocked.Exchange(ref _connected, connected ? 1 : 0) != (connected ? 1 : 0))
        {
            _changed();
        }
    }

    // ------------------------------------------------------------------ applying the map

    /// <summary>Applies a snapshot or a delta to the device, the name table and the state directory.</summary>
    internal void Apply(PeerMapMessage message, bool persist)
    {
        var device = _device ?? throw new InvalidOperationException("No device attached.");
        int peerCount;
        int added = 0, changed = 0, removed = 0;
        lock (_applyGate)
        {
            var current = Volatile.Read(ref _peers);
            if (message.Type == PeerMapMessageType.Delta && message.Version < Version)
            {
                ControlLog.StaleDelta(_logger, message.Version, Version);
                return;
            }

            var next = message.Type == PeerMapMessageType.Snapshot
                ? new Dictionary<NodePublicKey, MeshNodeInfo>()
                : new Dictionary<NodePublicKey, MeshNodeInfo>(current);
            var entries = message.Type == PeerMapMessageType.Snapshot ? message.Peers : message.Upserted;
            foreach (var info in entries ?? [])
            {
                if (info is null || !NodePublicKey.TryParse(info.PublicKey, out var key))
                {
                    ControlLog.PeerSkipped(_logger, info?.PublicKey ?? "(null)", "no valid public key");
                    continue;
                }

                if (key == _key.PublicKey)
                {
                    UpdateSelf(info);
                    continue;
                }

                if (info.Expired)
                {
                    next.Remove(key);
                    continue;
                }

                if (_staticPeers.Contains(key))
                {
                    ControlLog.PeerSkipped(_logger, info.PublicKey, "a static peer of the options has this key");
                    continue;
                }

                if (PublicKeyCheck.Problem(key.Bytes) is { } problem)
                {
                    // One unusable peer must not stop the map: it is skipped (logged once) and the rest applies.
                    SkipUnusable(info.PublicKey, problem);
                    continue;
                }

                next[key] = info;
            }

            foreach (string text in message.Removed ?? [])
            {
                if (NodePublicKey.TryParse(text, out var key))
                {
                    next.Remove(key);
                }
            }

            foreach (var (key, _) in current)
            {
                if (!next.ContainsKey(key))
                {
                    device.RemovePeer(key);
                    removed++;
                }
            }

            List<NodePublicKey>? unusable = null;
            foreach (var (key, info) in next)
            {
                var old = current.GetValueOrDefault(key);
                if (old is not null && SameRoute(old, info))
                {
                    if (!SameStatus(old, info))
                    {
                        changed++;
                    }

                    continue;
                }

                bool isNew;
                try
                {
                    isNew = device.ConfigurePeer(ToPeerConfig(key, info));
                }
                catch (ArgumentException ex)
                {
                    // Anything else the device refuses: that peer is left out, the rest applies.
                    SkipUnusable(info.PublicKey, ex.Message);
                    unusable ??= [];
                    unusable.Add(key);
                    continue;
                }

                if (isNew)
                {
                    added++;
                }
                else
                {
                    changed++;
                }
            }

            foreach (var key in unusable ?? [])
            {
                next.Remove(key);
            }

            Volatile.Write(ref _peers, next);
            Interlocked.Exchange(ref _version, message.Type == PeerMapMessageType.Snapshot ? message.Version : Math.Max(Version, message.Version));
            peerCount = next.Count;
            UpdateNames();
            if (persist)
            {
                try
                {
                    _store.SaveMap(new PeerMapMessage(PeerMapMessageType.Snapshot, Version, next.Values.ToList()));
                }
                catch (IOException ex)
                {
                    ControlLog.StateWriteFailed(_logger, ex.Message);
                }
            }
        }

        ControlLog.MapApplied(_logger, message.Type, message.Version, peerCount, added, changed, removed);
        if (added + changed + removed != 0 || message.Type == PeerMapMessageType.Snapshot)
        {
            _changed();
        }
    }

    private void UpdateSelf(MeshNodeInfo info)
    {
        var current = Volatile.Read(ref _self);
        if (current is null || current.Self == info)
        {
            return;
        }

        if (!current.Self.Addresses.SequenceEqual(info.Addresses))
        {
            ControlLog.AddressChanged(_logger, string.Join(", ", current.Self.Addresses), string.Join(", ", info.Addresses));
        }

        var updated = current with { Self = info };
        Volatile.Write(ref _self, updated);
        try
        {
            _store.SaveSelf(updated);
        }
        catch (IOException ex)
        {
            ControlLog.StateWriteFailed(_logger, ex.Message);
        }
    }

    private void UpdateNames()
    {
        if (Volatile.Read(ref _self) is not { } self)
        {
            return;
        }

        var names = new List<MeshName>(Peers.Count + 1) { new(self.Self.Name, ParseAddresses(self.Self.Addresses)) };
        foreach (var info in Peers.Values)
        {
            names.Add(new MeshName(info.Name ?? "", ParseAddresses(info.Addresses)));
        }

        _names.Replace(names, self.Mesh.DnsSuffix);
    }

    internal static IReadOnlyList<IPAddress> ParseAddresses(IReadOnlyList<string>? addresses)
    {
        var result = new List<IPAddress>(addresses?.Count ?? 0);
        foreach (string text in addresses ?? [])
        {
            if (IPAddress.TryParse(text, out var address))
            {
                result.Add(address);
            }
        }

        return result;
    }

    private static PeerConfig ToPeerConfig(NodePublicKey key, MeshNodeInfo info)
    {
        var allowed = new List<IPNetwork>();
        foreach (var address in ParseAddresses(info.Addresses))
        {
            allowed.Add(new IPNetwork(address, address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128));
        }

        var candidates = PeerEndpointChooser.Candidates(info.Endpoints);
        return new PeerConfig(key, new byte[32], candidates.Count > 0 ? candidates[0] : default, allowed, null, candidates);
    }

    // What the device uses: a difference means reconfiguring the peer.
    private static bool SameRoute(MeshNodeInfo a, MeshNodeInfo b) =>
        (a.Addresses ?? []).SequenceEqual(b.Addresses ?? [], StringComparer.Ordinal)
        && (a.Endpoints ?? []).SequenceEqual(b.Endpoints ?? [], StringComparer.Ordinal);

    // What the status shows beside the route.
    private static bool SameStatus(MeshNodeInfo a, MeshNodeInfo b) =>
        a.Online == b.Online && string.Equals(a.Name, b.Name, StringComparison.Ordinal) && string.Equals(a.Fqdn, b.Fqdn, StringComparison.Ordinal);
}
