using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TunnelMesh.Net.Forwarding;

namespace TunnelMesh.Net.Socks;

/// <summary>
/// A SOCKS5 proxy (RFC 1928, CONNECT only; no authentication or username/password per RFC 1929)
/// on a TCP port of the host, normally loopback, that opens its connections through a
/// <see cref="MeshNode"/>. Any SOCKS-capable tool then reaches mesh services by mesh name or
/// mesh address: <c>curl --socks5-hostname 127.0.0.1:1080 http://beta/</c>, a browser, or
/// <c>ssh -o ProxyCommand='nc -X 5 -x 127.0.0.1:1080 %h %p' beta</c>.
/// </summary>
/// <remarks>
/// <para>Host names in a request are resolved by the node (<see cref="MeshNode.DialAsync(string, int, CancellationToken)"/>):
/// <c>name</c>, <c>name.tunnelmesh</c> or an IPv4 literal. The mesh is IPv4 only, so an IPv6 address
/// is refused with <see cref="Socks5Reply.AddressTypeNotSupported"/> unless it is IPv4-mapped.
/// BIND and UDP ASSOCIATE are answered with <see cref="Socks5Reply.CommandNotSupported"/>.</para>
/// <para>After the success reply (whose BND.ADDR/BND.PORT is the mesh connection's local endpoint)
/// bytes are relayed both ways; when one side stops sending, the other side's sending half is
/// shut down, and the connection closes once both directions are finished. An error on either
/// side resets both.</para>
/// <para>Counters are in <see cref="GetStatistics"/> and on the <see cref="Meter"/> named
/// <see cref="MeterName"/> (instruments <c>tunnelmesh.socks5.*</c>, tagged with the listening endpoint).</para>
/// </remarks>
/// <example>
/// <code>
/// await using var socks = new MeshSocks5Server(node, new MeshSocks5Options { ListenEndPoint = new(IPAddress.Loopback, 1080) });
/// await socks.StartAsync();
/// // curl --socks5-hostname 127.0.0.1:1080 http://beta/
/// </code>
/// </example>
public sealed class MeshSocks5Server : IAsyncDisposable, IRelayCounters
{
    /// <summary>Name of the <see cref="Meter"/> the proxy publishes its counters on.</summary>
    public const string MeterName = "TunnelMesh.Net.Socks5";

    private const int MaxBacklog = 512;

    private readonly MeshSocks5Options _options;
    private readonly ILogger _logger;
    private readonly Forwarding.ConnectionTracker _tracker = new();
    private readonly long[] _failedByReply = new long[(int)Socks5Reply.AddressTypeNotSupported + 1];
    private Socket? _listener;
    private IPEndPoint? _localEndPoint;
    private Task? _acceptLoop;
    private Meter? _meter;
    private int _started;
    private long _succeeded;
    private long _protocolErrors;
    private long _noAcceptableMethod;
    private long _authenticationFailures;
    private long _bytesFromClients;
    private long _bytesToClients;

    /// <summary>Creates the proxy; nothing listens until <see cref="StartAsync"/>.</summary>
    /// <param name="node">The node connections are opened through. It should be started before clients connect
    /// (until then requests are answered with <see cref="Socks5Reply.GeneralFailure"/>); the proxy does not own it.</param>
    /// <param name="options">The settings; read at start.</param>
    /// <param name="loggerFactory">Where the proxy logs; none by default. Credentials are never logged.</param>
    public MeshSocks5Server(MeshNode node, MeshSocks5Options options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(options);
        Node = node;
        _options = options;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<MeshSocks5Server>();
    }

    /// <summary>The endpoint the proxy listens on (after <see cref="StartAsync"/>; the OS's port when the option's port was 0).</summary>
    /// <exception cref="InvalidOperationException">The proxy has not started.</exception>
    public IPEndPoint LocalEndPoint => _localEndPoint ?? throw new InvalidOperationException($"The SOCKS5 proxy has not started; call {nameof(StartAsync)} first.");

    internal MeshNode Node { get; }

    /// <summary>A copy of the options taken at start.</summary>
    internal MeshSocks5Options Options { get; private set; } = new();

    /// <summary>The mesh connection settings of every dial (the connect timeout from the options).</summary>
    internal MeshTcpOptions DialOptions { get; private set; } = MeshTcpOptions.Default;

    internal bool RequiresAuthentication { get; private set; }

    internal byte[] UsernameBytes { get; private set; } = [];

    internal byte[] PasswordBytes { get; private set; } = [];

    /// <summary>Validates the options and starts listening.</summary>
    /// <exception cref="MeshConfigurationException">An option is invalid (the exception names it), e.g. a non-loopback
    /// <see cref="MeshSocks5Options.ListenEndPoint"/> without <see cref="MeshSocks5Options.AllowNonLoopback"/>.</exception>
    /// <exception cref="SocketException">The endpoint could not be bound (e.g. the port is in use).</exception>
    /// <exception cref="InvalidOperationException">The proxy was started before.</exception>
    /// <exception cref="ObjectDisposedException">The proxy was disposed.</exception>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(_tracker.IsStopped, this);
        _options.Validate();
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The SOCKS5 proxy was started before.");
        }

        Options = new MeshSocks5Options
        {
            ListenEndPoint = _options.ListenEndPoint,
            AllowNonLoopback = _options.AllowNonLoopback,
            HandshakeTimeout = _options.HandshakeTimeout,
            ConnectTimeout = _options.ConnectTimeout,
            MaxConnections = _options.MaxConnections,
        };
        DialOptions = new MeshTcpOptions { ConnectTimeout = _options.ConnectTimeout };
        RequiresAuthentication = _options.Username is not null;
        if (RequiresAuthentication)
        {
            UsernameBytes = Encoding.UTF8.GetBytes(_options.Username!);
            PasswordBytes = Encoding.UTF8.GetBytes(_options.Password!);
        }

        var listener = new Socket(_options.ListenEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(_options.ListenEndPoint);
            listener.Listen(Math.Min(MaxBacklog, _options.MaxConnections));
        }
        catch
        {
            listener.Dispose();
            Volatile.Write(ref _started, 0);
            throw;
        }

        _listener = listener;
        _localEndPoint = (IPEndPoint)listener.LocalEndPoint!;
        _meter = CreateMeter(_localEndPoint.ToString());
        Log.Listening(_logger, _localEndPoint, RequiresAuthentication ? "username/password" : "no authentication");
        _acceptLoop = AcceptLoopAsync(listener);
        return Task.CompletedTask;
    }

    /// <summary>A snapshot of the counters.</summary>
    public MeshSocks5Statistics GetStatistics()
    {
        var failed = new Dictionary<Socks5Reply, long>();
        for (int i = 1; i < _failedByReply.Length; i++)
        {
            long n = Interlocked.Read(ref _failedByReply[i]);
            if (n > 0)
            {
                failed[(Socks5Reply)i] = n;
            }
        }

        return new MeshSocks5Statistics(
            _tracker.Accepted,
            _tracker.Active,
            _tracker.Rejected,
            Interlocked.Read(ref _succeeded),
            Interlocked.Read(ref _protocolErrors),
            Interlocked.Read(ref _noAcceptableMethod),
            Interlocked.Read(ref _authenticationFailures),
            failed,
            Interlocked.Read(ref _bytesFromClients),
            Interlocked.Read(ref _bytesToClients));
    }

    /// <summary>Stops listening and resets every proxied connection (client and mesh side). Safe to call twice.</summary>
    public ValueTask DisposeAsync() => _tracker.StopAsync(
        () =>
        {
            _listener?.Dispose();
            return ValueTask.CompletedTask;
        },
        () => _acceptLoop,
        () =>
        {
            _meter?.Dispose();
            if (_localEndPoint is not null)
            {
                Log.Stopped(_logger, _localEndPoint);
            }
        });

    private async Task AcceptLoopAsync(Socket listener)
    {
        CancellationToken stopping = _tracker.Stopping;
        ILogger connectionLogger = _logger;
        while (!stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException ex)
            {
                // E.g. out of file descriptors: log, back off a little, and go on.
                Log.AcceptFailed(_logger, ex);
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(50), stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            if (!_tracker.TryAdmit(Options.MaxConnections))
            {
                Log.Rejected(_logger, SafeRemote(client), Options.MaxConnections);
                client.Dispose();
                continue;
            }

            var connection = new Socks5Connection(this, client, connectionLogger, stopping);
            _tracker.Add(connection);
            connection.Start();
        }
    }

    private static EndPoint? SafeRemote(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint;
        }
        catch (SocketException)
        {
            return null;
        }
    }

    internal void OnConnectionClosed(Socks5Connection connection) => _tracker.Release(connection);

    internal void CountSucceeded() => Interlocked.Increment(ref _succeeded);

    internal void CountFailed(Socks5Reply reply) => Interlocked.Increment(ref _failedByReply[(int)reply]);

    internal void CountProtocolError() => Interlocked.Increment(ref _protocolErrors);

    internal void CountNoAcceptableMethod() => Interlocked.Increment(ref _noAcceptableMethod);

    internal void CountAuthenticationFailure() => Interlocked.Increment(ref _authenticationFailures);

    /// <summary>Client to mesh.</summary>
    void IRelayCounters.CountSocketToMesh(int bytes) => Interlocked.Add(ref _bytesFromClients, bytes);

    /// <summary>Mesh to client.</summary>
    void IRelayCounters.CountMeshToSocket(int bytes) => Interlocked.Add(ref _bytesToClients, bytes);

    private Meter CreateMeter(string endpoint)
    {
        var meter = new Meter(MeterName);
        var tag = new KeyValuePair<string, object?>("endpoint", endpoint);
        meter.CreateObservableCounter("tunnelmesh.socks5.connections.accepted", () => new Measurement<long>(_tracker.Accepted, tag), "{connection}", "Client connections accepted");
        meter.CreateObservableUpDownCounter("tunnelmesh.socks5.connections.active", () => new Measurement<long>(_tracker.Active, tag), "{connection}", "Client connections open now");
        meter.CreateObservableCounter("tunnelmesh.socks5.connections.rejected", () => new Measurement<long>(_tracker.Rejected, tag), "{connection}", "Client connections closed at once because MaxConnections were open");
        meter.CreateObservableCounter("tunnelmesh.socks5.requests.succeeded", () => new Measurement<long>(Interlocked.Read(ref _succeeded), tag), "{request}", "CONNECT requests relayed");
        meter.CreateObservableCounter("tunnelmesh.socks5.requests.failed", () => ObserveFailures(tag), "{request}", "Requests answered with a failure reply, by reply code");
        meter.CreateObservableCounter("tunnelmesh.socks5.handshakes.failed", () => ObserveHandshakeFailures(tag), "{connection}", "Connections closed during the handshake, by reason");
        meter.CreateObservableCounter("tunnelmesh.socks5.bytes", () => ObserveBytes(tag), "By", "Bytes relayed, by direction");
        return meter;
    }

    private List<Measurement<long>> ObserveFailures(KeyValuePair<string, object?> endpoint)
    {
        var measurements = new List<Measurement<long>>(_failedByReply.Length - 1);
        for (int i = 1; i < _failedByReply.Length; i++)
        {
            measurements.Add(new Measurement<long>(Interlocked.Read(ref _failedByReply[i]), endpoint, new KeyValuePair<string, object?>("reply", ((Socks5Reply)i).ToString())));
        }

        return measurements;
    }

    private Measurement<long>[] ObserveHandshakeFailures(KeyValuePair<string, object?> endpoint) =>
    [
        new(Interlocked.Read(ref _protocolErrors), endpoint, new KeyValuePair<string, object?>("reason", "protocol")),
        new(Interlocked.Read(ref _noAcceptableMethod), endpoint, new KeyValuePair<string, object?>("reason", "no_acceptable_method")),
        new(Interlocked.Read(ref _authenticationFailures), endpoint, new KeyValuePair<string, object?>("reason", "authentication")),
    ];

    private Measurement<long>[] ObserveBytes(KeyValuePair<string, object?> endpoint) =>
    [
        new(Interlocked.Read(ref _bytesFromClients), endpoint, new KeyValuePair<string, object?>("direction", "from_client")),
        new(Interlocked.Read(ref _bytesToClients), endpoint, new KeyValuePair<string, object?>("direction", "to_client")),
    ];
}
