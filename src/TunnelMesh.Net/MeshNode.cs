using System.Buffers.Binary;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TunnelMesh.Net.Dns;
using TunnelMesh.Net.Stack;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net;

/// <summary>
/// A node of the mesh, inside this process: a WireGuard endpoint with its own userspace IP stack.
/// No TUN device and no root: other nodes (or any WireGuard peer) reach it at its mesh address,
/// and the application talks through it with <see cref="PingAsync(IPAddress, CancellationToken)"/>
/// and <see cref="ListenUdp"/> sockets.
/// </summary>
/// <example>
/// <code>
/// await using var node = new MeshNode(MeshNodeOptions.FromWgQuick(File.ReadAllText("wg0.conf")));
/// await node.StartAsync();
/// var rtt = await node.PingAsync(IPAddress.Parse("10.0.0.2"));
/// </code>
/// </example>
public sealed class MeshNode : IAsyncDisposable
{
    /// <summary>Name of the <see cref="Meter"/> the node publishes its metrics on.</summary>
    public const string MeterName = "TunnelMesh.Net";

    private static readonly TimeSpan DefaultPingTimeout = TimeSpan.FromSeconds(5);

    private readonly MeshNodeOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly TimeProvider _time;
    private readonly Func<MeshNodeOptions, PacketBufferPool, DropCounters, IDatagramTransport>? _transportFactory;
    private readonly DropCounters _drops = new();
    private readonly PacketBufferPool _pool = new();
    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private IDatagramTransport? _transport;
    private WireGuardDevice? _device;
    private NetStack? _stack;
    private MeshDnsServer? _dns;
    private StunClient? _stun;
    private Meter? _meter;
    private IPAddress? _address;
    private int _state; // 0 new, 1 running, 2 disposed

    /// <summary>Creates a node; nothing happens until <see cref="StartAsync"/>.</summary>
    /// <param name="options">The configuration. It is read at start; later changes to it have no effect.</param>
    /// <param name="loggerFactory">Where the node logs; none by default.</param>
    public MeshNode(MeshNodeOptions options, ILoggerFactory? loggerFactory = null)
        : this(options, loggerFactory, null, null)
    {
    }

    /// <summary>Creates a node with an injected clock and transport (tests, simulators).</summary>
    internal MeshNode(
        MeshNodeOptions options,
        ILoggerFactory? loggerFactory,
        TimeProvider? timeProvider,
        Func<MeshNodeOptions, PacketBufferPool, DropCounters, IDatagramTransport>? transportFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _transportFactory = transportFactory;
    }

    /// <summary>The node's public key (its identity in the mesh).</summary>
    /// <exception cref="InvalidOperationException">No private key was configured.</exception>
    public NodePublicKey PublicKey => _options.PrivateKey?.PublicKey
        ?? throw new InvalidOperationException($"{nameof(MeshNodeOptions)}.{nameof(MeshNodeOptions.PrivateKey)} is not set.");

    /// <summary>The node's IPv4 address in the mesh (after start).</summary>
    public IPAddress Address => _address ?? throw NotStarted();

    /// <summary>The UDP port WireGuard messages arrive on (after start; the OS's choice when the option was 0).</summary>
    public int ListenPort => _transport?.LocalPort ?? throw NotStarted();

    /// <summary>Whether the node has started and is not disposed.</summary>
    public bool IsRunning => Volatile.Read(ref _state) == 1;

    internal WireGuardDevice Device => _device ?? throw NotStarted();

    internal NetStack Stack => _stack ?? throw NotStarted();

    internal DropCounters Drops => _drops;

    /// <summary>The mesh's names as this node knows them (filled from the coordinator's peer map); the DNS server answers from it.</summary>
    internal MeshNameTable Names { get; } = new();

    /// <summary>The reflexive endpoint of the node's WireGuard socket, as a STUN server last reported it (for the coordinator client to report); null until learned.</summary>
    internal IPEndPoint? ReflexiveEndpoint => _stun?.ReflexiveEndpoint;

    /// <summary>The STUN client on the node's WireGuard socket (after start).</summary>
    internal StunClient Stun => _stun ?? throw NotStarted();

    /// <summary>Asks <paramref name="stunServer"/> for the WireGuard socket's reflexive endpoint (3 attempts, 1 s apart) and remembers it in <see cref="ReflexiveEndpoint"/>.</summary>
    /// <exception cref="TimeoutException">The server did not answer.</exception>
    internal Task<IPEndPoint> DiscoverReflexiveEndpointAsync(IPEndPoint stunServer, CancellationToken cancellationToken = default)
    {
        ThrowIfNotRunning();
        return Stun.QueryAsync(stunServer, TimeSpan.FromSeconds(1), 3, cancellationToken);
    }

    /// <summary>The DNS server on the node's mesh address (when <see cref="MeshNodeOptions.EnableDns"/> and started).</summary>
    internal MeshDnsServer? DnsServer => _dns;

    /// <summary>
    /// Validates the options, binds the UDP socket and starts the node. Peers with an endpoint are
    /// contacted when there is something to send (or right away with a persistent keepalive).
    /// </summary>
    /// <exception cref="MeshConfigurationException">An option is invalid; the exception names it.</exception>
    /// <exception cref="SocketException">The UDP port could not be bound.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await _lifecycle.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_state == 2, this);
            if (_state == 1)
            {
                throw new InvalidOperationException("The node is already started.");
            }

            var config = await MeshNodeConfigValidator.ValidateAsync(_options, cancellationToken).ConfigureAwait(false);
            var logger = _loggerFactory.CreateLogger<MeshNode>();
            var transport = _transportFactory is not null
                ? _transportFactory(_options, _pool, _drops)
                : new UdpTransport(new UdpTransportOptions { BindAddress = _options.ListenAddress, Port = _options.ListenPort, Pool = _pool, Drops = _drops });
            try
            {
                _address = config.Ipv4Address;
                var device = new WireGuardDevice(config.PrivateKey, transport, p => _stack!.DeliverInbound(p), _pool, _drops, _time, _loggerFactory.CreateLogger<WireGuardDevice>());
                uint address = BinaryPrimitives.ReadUInt32BigEndian(config.Ipv4Address.GetAddressBytes());
                var stack = new NetStack(new NetStackOptions { Address = address, Mtu = config.Mtu }, device, _pool, _drops, _time, _loggerFactory.CreateLogger<NetStack>());
                _stack = stack;
                _device = device;
                _stun = new StunClient(transport, _pool, _drops, _time);
                device.Stun = _stun;
                _transport = transport;
                foreach (var peer in config.Peers)
                {
                    device.AddPeer(peer);
                }

                transport.Start(device);
                await StartDnsAsync(stack).ConfigureAwait(false);
                _meter = CreateMeter();
                Volatile.Write(ref _state, 1);
                MeshNodeLog.Started(logger, PublicKey, config.Ipv4Address, transport.LocalPort, config.Peers.Count);
            }
            catch
            {
                if (_dns is not null)
                {
                    await _dns.DisposeAsync().ConfigureAwait(false);
                    _dns = null;
                }

                await transport.DisposeAsync().ConfigureAwait(false);
                _device?.Shutdown();
                _device = null;
                _stack = null;
                _transport = null;
                throw;
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Sends an ICMP echo request through the mesh and returns the round-trip time.</summary>
    /// <exception cref="TimeoutException">No reply within 5 seconds.</exception>
    public Task<TimeSpan> PingAsync(IPAddress address, CancellationToken cancellationToken = default) =>
        PingAsync(address, DefaultPingTimeout, cancellationToken);

    /// <summary>Sends an ICMP echo request through the mesh and returns the round-trip time.</summary>
    /// <param name="address">An IPv4 address inside the mesh.</param>
    /// <param name="timeout">How long to wait for the reply.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="TimeoutException">No reply within <paramref name="timeout"/>.</exception>
    public Task<TimeSpan> PingAsync(IPAddress address, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException("Only IPv4 mesh addresses can be pinged so far.", nameof(address));
        }

        ThrowIfNotRunning();
        return Stack.PingAsync(BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes()), 56, timeout, cancellationToken);
    }

    /// <summary>Opens a UDP socket on the node's mesh address.</summary>
    /// <param name="port">The local port; 0 picks a free ephemeral port.</param>
    /// <exception cref="InvalidOperationException">The port is already in use on this node.</exception>
    public MeshUdpSocket ListenUdp(int port = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        ThrowIfNotRunning();
        return Stack.BindUdp(port);
    }

    /// <summary>Listens for TCP connections on <paramref name="port"/> of the node's mesh address.</summary>
    /// <exception cref="System.Net.Sockets.SocketException">The port is already in use on this node.</exception>
    public Task<MeshTcpListener> ListenAsync(int port, CancellationToken cancellationToken = default) =>
        ListenAsync(port, new MeshTcpListenerOptions(), cancellationToken);

    /// <summary>Listens for TCP connections on <paramref name="port"/> of the node's mesh address.</summary>
    /// <exception cref="System.Net.Sockets.SocketException">The port is already in use on this node.</exception>
    public Task<MeshTcpListener> ListenAsync(int port, MeshTcpListenerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        cancellationToken.ThrowIfCancellationRequested();
        options.Validate();
        ThrowIfNotRunning();
        var core = Stack.Tcp.Listen((ushort)port, options);
        return Task.FromResult(new MeshTcpListener(core, new IPEndPoint(Address, port)));
    }

    /// <summary>Opens a TCP connection to <paramref name="address"/>:<paramref name="port"/> through the mesh.</summary>
    /// <exception cref="System.Net.Sockets.SocketException">
    /// <see cref="SocketError.ConnectionRefused"/> when the peer answers with RST; <see cref="SocketError.HostUnreachable"/>
    /// when no peer routes the address or an ICMP unreachable comes back; <see cref="SocketError.TimedOut"/> after the connect timeout.
    /// </exception>
    public Task<MeshTcpStream> DialAsync(IPAddress address, int port, CancellationToken cancellationToken = default) =>
        DialAsync(new IPEndPoint(address, port), null, cancellationToken);

    /// <summary>Opens a TCP connection to a host given as an IP address literal (mesh names come with the coordinator).</summary>
    public Task<MeshTcpStream> DialAsync(string host, int port, CancellationToken cancellationToken = default) =>
        DialAsync(IPAddress.Parse(host), port, cancellationToken);

    /// <summary>Opens a TCP connection to <paramref name="remote"/> through the mesh with the given connection settings.</summary>
    public async Task<MeshTcpStream> DialAsync(IPEndPoint remote, MeshTcpOptions? options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(remote);
        if (remote.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException("Only IPv4 mesh addresses can be dialled so far.", nameof(remote));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(remote.Port, 1, nameof(remote));
        options ??= MeshTcpOptions.Default;
        options.Validate(nameof(MeshTcpOptions));
        ThrowIfNotRunning();
        uint destination = BinaryPrimitives.ReadUInt32BigEndian(remote.Address.GetAddressBytes());
        if (!Device.HasRouteTo(remote.Address))
        {
            throw new SocketException((int)SocketError.HostUnreachable, $"No peer of this node routes {remote.Address} (it is in no peer's allowed IPs).");
        }

        var connection = await Stack.Tcp.ConnectAsync(destination, (ushort)remote.Port, options, cancellationToken).ConfigureAwait(false);
        return new MeshTcpStream(connection);
    }

    /// <summary>A snapshot of the node's per-peer counters and drops by reason.</summary>
    public MeshNodeStatistics GetStatistics()
    {
        var peers = new List<MeshPeerStatistics>();
        if (_device is { } device)
        {
            foreach (var peer in device.Peers)
            {
                var endpoint = peer.Endpoint;
                peers.Add(new MeshPeerStatistics(
                    peer.PublicKey,
                    endpoint.IsSet ? endpoint.ToIPEndPoint() : null,
                    peer.Config.AllowedIps,
                    peer.RxBytes,
                    peer.TxBytes,
                    peer.Handshakes,
                    peer.LastHandshake));
            }
        }

        return new MeshNodeStatistics(peers, _drops.Snapshot());
    }

    /// <summary>Stops the node: closes the socket, stops timers, forgets session keys. Safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_state == 2)
            {
                return;
            }

            Volatile.Write(ref _state, 2);
            if (_dns is not null)
            {
                await _dns.DisposeAsync().ConfigureAwait(false);
            }

            _device?.Shutdown();
            if (_transport is not null)
            {
                await _transport.DisposeAsync().ConfigureAwait(false);
            }

            if (_stack is not null)
            {
                await _stack.DisposeAsync().ConfigureAwait(false);
            }

            _meter?.Dispose();
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    private async Task StartDnsAsync(NetStack stack)
    {
        if (!_options.EnableDns)
        {
            return;
        }

        if (_options.DnsUpstream is { Port: 0 })
        {
            throw new MeshConfigurationException(nameof(MeshNodeOptions.DnsUpstream), "The upstream DNS server needs a port (usually 53).");
        }

        var dns = new MeshDnsServer(stack, Names, new MeshDnsServerOptions { Upstream = _options.DnsUpstream }, _drops, _loggerFactory.CreateLogger<MeshDnsServer>());
        await dns.StartAsync().ConfigureAwait(false);
        _dns = dns;
    }

    private Meter CreateMeter()
    {
        var meter = new Meter(MeterName);
        var node = new KeyValuePair<string, object?>("node", PublicKey.ToString());
        meter.CreateObservableCounter("tunnelmesh.drops", () => _drops.Observe(node), "{packet}", "Datagrams and packets dropped, by reason");
        meter.CreateObservableCounter("tunnelmesh.peer.received", () => ObservePeers(static p => p.RxBytes, node), "By", "Bytes of authenticated transport messages received");
        meter.CreateObservableCounter("tunnelmesh.peer.sent", () => ObservePeers(static p => p.TxBytes, node), "By", "Bytes of transport messages sent");
        meter.CreateObservableCounter("tunnelmesh.peer.handshakes", () => ObservePeers(static p => p.Handshakes, node), "{handshake}", "Completed handshakes");
        meter.CreateObservableCounter("tunnelmesh.buffers.allocated", () => new Measurement<long>(_pool.Created, node), "{buffer}", "Packet buffers the node's pool has allocated (64 KiB each); flat once the pool holds its working set");
        meter.CreateObservableUpDownCounter("tunnelmesh.buffers.pooled", () => new Measurement<long>(_pool.Retained, node), "{buffer}", "Free packet buffers the node's pool holds now");
        return meter;
    }

    private IEnumerable<Measurement<long>> ObservePeers(Func<WireGuardPeer, long> read, KeyValuePair<string, object?> node)
    {
        if (_device is not { } device)
        {
            yield break;
        }

        foreach (var peer in device.Peers)
        {
            yield return new Measurement<long>(read(peer), node, new KeyValuePair<string, object?>("peer", peer.PublicKey.ToString()));
        }
    }

    private void ThrowIfNotRunning()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _state) == 2, this);
        if (Volatile.Read(ref _state) != 1)
        {
            throw NotStarted();
        }
    }

    private static InvalidOperationException NotStarted() => new("The node is not started; call StartAsync first.");
}

/// <summary>Source-generated log messages of the node.</summary>
internal static partial class MeshNodeLog
{
    [LoggerMessage(1, LogLevel.Information, "Mesh node {PublicKey} started at {Address}, UDP port {Port}, {PeerCount} peers")]
    public static partial void Started(ILogger logger, NodePublicKey publicKey, IPAddress address, int port, int peerCount);
}
