using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace TunnelMesh.Net.Forwarding;

/// <summary>
/// Puts a TCP service of this host on the mesh: listens on <see cref="MeshPortForwardOptions.MeshPort"/>
/// of a node's mesh address and forwards each connection to <see cref="MeshPortForwardOptions.Target"/>
/// on the host's own network (e.g. a web app on 127.0.0.1:3000), the way <c>tailscale serve tcp:…</c> does.
/// The service needs no change and no TUN device: for it, every connection comes from the host itself.
/// </summary>
/// <remarks>
/// <para>Bytes are relayed both ways; when one side stops sending, the other side's sending half is shut
/// down, and the connection closes once both directions are finished. An error on either side resets both.
/// When the target refuses, cannot be resolved or does not answer within
/// <see cref="MeshPortForwardOptions.ConnectTimeout"/>, the mesh connection is reset (RST), so the peer sees
/// the same failure as from a closed port once connected; it is counted in
/// <see cref="MeshPortForwardStatistics.FailedConnects"/> and logged.</para>
/// <para>Who may connect: every peer the node's packet filter lets in, or, with
/// <see cref="MeshPortForwardOptions.AllowedTags"/>, only peers whose <see cref="MeshNode.WhoIs(MeshTcpStream)"/>
/// identity carries one of the tags. The target sees connections from the host, not the peer's address; an
/// application that needs the caller's identity should serve on the mesh itself (<c>UseMesh</c>) instead.</para>
/// </remarks>
/// <example>
/// <code>
/// await using var forward = new MeshPortForwarder(node, new MeshPortForwardOptions
/// {
///     MeshPort = 80,
///     Target = new IPEndPoint(IPAddress.Loopback, 3000),
/// });
/// await forward.StartAsync();
/// // from another node: curl --socks5-hostname 127.0.0.1:1080 http://grafana/
/// </code>
/// </example>
public sealed class MeshPortForwarder : IAsyncDisposable, IRelayCounters
{
    /// <summary>Name of the <see cref="System.Diagnostics.Metrics.Meter"/> the forwarder publishes its counters on
    /// (instruments <c>tunnelmesh.forward.*</c>, tagged with the mesh endpoint and the target).</summary>
    public const string MeterName = "TunnelMesh.Net.Forwarding";

    private readonly MeshNode _node;
    private readonly MeshPortForwardOptions _configured;
    private readonly ILogger _logger;
    private readonly ConnectionTracker _tracker = new();
    private MeshPortForwardOptions _options = new();
    private MeshTcpListener? _listener;
    private IPEndPoint? _localEndPoint;
    private Task? _acceptLoop;
    private System.Diagnostics.Metrics.Meter? _meter;
    private int _started;
    private long _denied;
    private long _failedConnects;
    private long _forwarded;
    private long _bytesToTarget;
    private long _bytesFromTarget;

    /// <summary>Creates the forwarder; nothing listens until <see cref="StartAsync"/>.</summary>
    /// <param name="node">The node whose mesh address is listened on; it must be started before <see cref="StartAsync"/>.
    /// The forwarder does not own it.</param>
    /// <param name="options">The settings; validated and copied at start.</param>
    /// <param name="loggerFactory">Where the forwarder logs; none by default.</param>
    public MeshPortForwarder(MeshNode node, MeshPortForwardOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(options);
        _node = node;
        _configured = options;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<MeshPortForwarder>();
    }

    /// <summary>The relay each connection runs once the target is connected (<see cref="TcpRelay.RunAsync"/>);
    /// set before <see cref="StartAsync"/> only by the forwarder benchmark, to measure its socket-only baseline beside it.</summary>
    internal Func<Socket, MeshTcpStream, IRelayCounters?, CancellationToken, Task<RelayResult>> Relay { get; init; } = TcpRelay.RunAsync;

    /// <summary>The node's mesh address and <see cref="MeshPortForwardOptions.MeshPort"/> (after <see cref="StartAsync"/>).</summary>
    /// <exception cref="InvalidOperationException">The forwarder has not started.</exception>
    public IPEndPoint LocalEndPoint => _localEndPoint ?? throw new InvalidOperationException($"The port forwarder has not started; call {nameof(StartAsync)} first.");

    /// <summary>Validates the options and starts listening on the mesh port.</summary>
    /// <exception cref="MeshConfigurationException">An option is invalid (the exception names it).</exception>
    /// <exception cref="SocketException">The mesh port is already in use on the node.</exception>
    /// <exception cref="InvalidOperationException">The node is not running, or the forwarder was started before.</exception>
    /// <exception cref="ObjectDisposedException">The forwarder was disposed.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(_tracker.IsStopped, this);
        MeshPortForwardOptions options = _configured.Clone();
        options.Validate();
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The port forwarder was started before.");
        }

        try
        {
            _options = options;
            _listener = await _node.ListenAsync(options.MeshPort, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Volatile.Write(ref _started, 0);
            throw;
        }

        _localEndPoint = _listener.LocalEndPoint;
        Log.Forwarding(_logger, _localEndPoint, options.Target!, options.AllowedTags.Count == 0 ? "" : " (only peers tagged " + string.Join(", ", options.AllowedTags) + ")");
        _meter = CreateMeter(_localEndPoint.ToString(), options.Target!.ToString() ?? "");
        _acceptLoop = AcceptLoopAsync(_listener, _localEndPoint);
    }

    private System.Diagnostics.Metrics.Meter CreateMeter(string endpoint, string target)
    {
        var meter = new System.Diagnostics.Metrics.Meter(MeterName);
        KeyValuePair<string, object?>[] tags = [new("endpoint", endpoint), new("target", target)];
        meter.CreateObservableCounter("tunnelmesh.forward.connections.accepted", () => new System.Diagnostics.Metrics.Measurement<long>(_tracker.Accepted, tags), "{connection}", "Mesh connections accepted");
        meter.CreateObservableUpDownCounter("tunnelmesh.forward.connections.active", () => new System.Diagnostics.Metrics.Measurement<long>(_tracker.Active, tags), "{connection}", "Mesh connections open now");
        meter.CreateObservableCounter("tunnelmesh.forward.connections.refused", () => new System.Diagnostics.Metrics.Measurement<long>[]
        {
            new(_tracker.Rejected, [.. tags, new("reason", "max_connections")]),
            new(Interlocked.Read(ref _denied), [.. tags, new("reason", "tag")]),
            new(Interlocked.Read(ref _failedConnects), [.. tags, new("reason", "target")]),
        }, "{connection}", "Mesh connections reset without reaching the target, by reason");
        meter.CreateObservableCounter("tunnelmesh.forward.bytes", () => new System.Diagnostics.Metrics.Measurement<long>[]
        {
            new(Interlocked.Read(ref _bytesToTarget), [.. tags, new("direction", "to_target")]),
            new(Interlocked.Read(ref _bytesFromTarget), [.. tags, new("direction", "from_target")]),
        }, "By", "Bytes relayed, by direction");
        return meter;
    }

    /// <summary>A snapshot of the counters.</summary>
    public MeshPortForwardStatistics GetStatistics() => new(
        _tracker.Accepted,
        _tracker.Active,
        _tracker.Rejected,
        Interlocked.Read(ref _denied),
        Interlocked.Read(ref _failedConnects),
        Interlocked.Read(ref _forwarded),
        Interlocked.Read(ref _bytesToTarget),
        Interlocked.Read(ref _bytesFromTarget));

    /// <summary>
    /// Stops listening (the mesh port is free again) and resets every open connection, on the mesh and
    /// toward the target. Safe to call twice.
    /// </summary>
    public ValueTask DisposeAsync() => _tracker.StopAsync(
        () => _listener?.DisposeAsync() ?? ValueTask.CompletedTask,
        () => _acceptLoop,
        () =>
        {
            _meter?.Dispose();
            if (_localEndPoint is not null)
            {
                Log.Stopped(_logger, _localEndPoint);
            }
        });

    private async Task AcceptLoopAsync(MeshTcpListener listener, IPEndPoint local)
    {
        CancellationToken stopping = _tracker.Stopping;
        while (!stopping.IsCancellationRequested)
        {
            MeshTcpStream mesh;
            try
            {
                mesh = await listener.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The node was stopped under the forwarder (ObjectDisposedException): nothing more will arrive.
                Log.AcceptFailed(_logger, local, ex);
                return;
            }

            if (!_tracker.TryAdmit(_options.MaxConnections))
            {
                Log.Rejected(_logger, local, mesh.RemoteEndPoint, _options.MaxConnections);
                mesh.Abort();
                continue;
            }

            var connection = new Connection(this, mesh, local);
            _tracker.Add(connection);
            connection.Start(stopping);
        }
    }

    private void OnConnectionClosed(Connection connection) => _tracker.Release(connection);

    /// <summary>Mesh to target.</summary>
    void IRelayCounters.CountMeshToSocket(int bytes) => Interlocked.Add(ref _bytesToTarget, bytes);

    /// <summary>Target to mesh.</summary>
    void IRelayCounters.CountSocketToMesh(int bytes) => Interlocked.Add(ref _bytesFromTarget, bytes);

    /// <summary>One accepted mesh connection: the tag check, the connect to the target, then the relay.</summary>
    private sealed class Connection(MeshPortForwarder forwarder, MeshTcpStream mesh, IPEndPoint local) : ITrackedConnection
    {
        private readonly IPEndPoint _peer = mesh.RemoteEndPoint;

        public Task Completion { get; private set; } = Task.CompletedTask;

        public void Start(CancellationToken stopping) => Completion = RunAsync(stopping);

        private async Task RunAsync(CancellationToken stopping)
        {
            ILogger logger = forwarder._logger;
            Socket? target = null;
            bool relayed = false;
            try
            {
                if (!IsAllowed())
                {
                    return;
                }

                target = await ConnectAsync(stopping).ConfigureAwait(false);
                if (target is null)
                {
                    return;
                }

                Interlocked.Increment(ref forwarder._forwarded);
                Log.Connected(logger, local, _peer, forwarder._options.Target!);
                relayed = true;
                RelayResult result = await forwarder.Relay(target, mesh, forwarder, stopping).ConfigureAwait(false);
                if (result.Graceful)
                {
                    Log.RelayEnded(logger, local, _peer, result.MeshToSocket, result.SocketToMesh);
                }
                else if (result.Error is { } error)
                {
                    Log.RelayAborted(logger, local, _peer, error);
                }
            }
            catch (Exception ex)
            {
                // Whatever happens with one connection ends that connection only.
                Log.ConnectionFailed(logger, local, _peer, ex);
            }
            finally
            {
                if (!relayed)
                {
                    // Refused, denied, failed or stopped before the relay: reset the peer (and the target, if connected).
                    TcpRelay.Close(target, mesh, graceful: false);
                }

                forwarder.OnConnectionClosed(this);
            }
        }

        private bool IsAllowed()
        {
            IList<string> tags = forwarder._options.AllowedTags;
            if (tags.Count == 0)
            {
                return true;
            }

            MeshPeerIdentity? peer = forwarder._node.WhoIs(mesh);
            if (peer is not null)
            {
                foreach (string tag in tags)
                {
                    if (peer.HasTag(tag))
                    {
                        return true;
                    }
                }
            }

            Interlocked.Increment(ref forwarder._denied);
            Log.Denied(forwarder._logger, local, _peer, peer?.Name ?? peer?.PublicKey.ToString() ?? "unknown peer");
            return false;
        }

        /// <summary>Connects to the target; null after a failure (counted and logged) or when stopping.</summary>
        private async Task<Socket?> ConnectAsync(CancellationToken stopping)
        {
            EndPoint endPoint = forwarder._options.Target!;
            Socket socket = endPoint is IPEndPoint ip
                ? new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
                : new Socket(SocketType.Stream, ProtocolType.Tcp); // dual mode: a DnsEndPoint may resolve to either family
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            timeout.CancelAfter(forwarder._options.ConnectTimeout);
            string error;
            try
            {
                socket.NoDelay = true;
                await socket.ConnectAsync(endPoint, timeout.Token).ConfigureAwait(false);
                return socket;
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                socket.Dispose();
                return null;
            }
            catch (OperationCanceledException)
            {
                error = $"no answer within {forwarder._options.ConnectTimeout.TotalSeconds:0.###} s (ConnectTimeout)";
            }
            catch (SocketException ex)
            {
                error = $"{ex.SocketErrorCode}: {ex.Message}";
            }

            socket.Dispose();
            Interlocked.Increment(ref forwarder._failedConnects);
            Log.ConnectFailed(forwarder._logger, local, _peer, endPoint, error);
            return null;
        }
    }
}
