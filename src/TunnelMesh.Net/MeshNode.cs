using System.Buffers.Binary;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TunnelMesh.Net.Control;

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
public sealed partial class MeshNode : IAsyncDisposable
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
    private RelayTransport? _relay;
    private WireGuardDevice? _device;
    private NetStack? _stack;
    private MeshDnsServer? _dns;
    private StunClient? _stun;
    private Meter? _meter;
    private readonly MeshNameTable _names = new();
    private IPAddress? _address;
    private NodePrivateKey? _privateKey;
    private MeshControlPlane? _control;
    private int _statusPending;
    private readonly CancellationTokenSource _background = new();
    private Task? _stunLoop;
    private NetworkChangeSignal? _networkChanges;
    private TaskCompletionSource _stunWake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastStunWake;
    private MeshNodePortMapping? _portMapping;
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
    /// <exception cref="InvalidOperationException">No private key was configured (in control mode: the node has not started yet).</exception>
    public NodePublicKey PublicKey => _privateKey?.PublicKey ?? _options.PrivateKey?.PublicKey
        ?? throw new InvalidOperationException($"{nameof(MeshNodeOptions)}.{nameof(MeshNodeOptions.PrivateKey)} is not set (a node in control mode has its key after StartAsync).");

    /// <summary>The node's IPv4 address in the mesh (after start).</summary>
    public IPAddress Address => _address ?? throw NotStarted();

    /// <summary>The UDP port WireGuard messages arrive on (after start; the OS's choice when the option was 0).</summary>
    public int ListenPort => _transport?.LocalPort ?? throw NotStarted();

    /// <summary>Whether the node has started and is not disposed.</summary>
    public bool IsRunning => Volatile.Read(ref _state) == 1;

    internal WireGuardDevice Device => _device ?? throw NotStarted();

    internal NetStack Stack => _stack ?? throw NotStarted();

    internal DropCounters Drops => _drops;

    /// <summary>The relay transport, when <see cref="MeshNodeOptions.RelayUrl"/> is set (after start).</summary>
    internal RelayTransport? Relay => _relay;

    /// <summary>The path packets to <paramref name="peer"/> take now (Direct or Relay); null for an unknown peer.</summary>
    internal PeerPath? GetPeerPath(NodePublicKey peer) => _device?.FindPeer(peer)?.CurrentPath;


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

    /// <summary>
    /// Checks the network between this node and the internet, in the spirit of <c>tailscale netcheck</c>:
    /// asks every STUN server the coordinator advertises (each of its addresses, IPv4 and IPv6) for the
    /// reflexive endpoint of the node's WireGuard socket, tells from the answers whether the NAT maps
    /// endpoint-independently (easy) or not (hard), reports the node's port mapping (or probes the gateway
    /// for PCP, NAT-PMP and UPnP IGD without mapping anything), and times an HTTP round trip to the coordinator
    /// that serves the relay. Takes at most a few seconds; failures are reported in the result, not thrown.
    /// </summary>
    /// <remarks>
    /// Telling easy from hard needs two STUN destinations of one address family: a coordinator that
    /// advertises one reports <see cref="MeshNatMapping.Unknown"/> (run its STUN responder on two ports,
    /// e.g. <c>tunnelmesh serve --stun-port 3478 --stun-port 3479</c>). A static node (no coordinator)
    /// has no STUN servers and reports none.
    /// </remarks>
    /// <exception cref="InvalidOperationException">The node is not started.</exception>
    public Task<MeshNetworkReport> CheckNetworkAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfNotRunning();
        IReadOnlyList<string> servers = [];
        try
        {
            servers = _control?.Self.Mesh.StunEndpoints ?? [];
        }
        catch (InvalidOperationException)
        {
            // not joined yet: no STUN servers known
        }

        int port = ListenPort;
        var drops = _drops;
        return MeshNodeNetworkCheck.RunAsync(
            servers,
            Stun,
            _portMapping?.Current,
            ct => Transport.PortMapping.PortMapper.ProbeAsync(new Transport.PortMapping.PortMapperOptions { InternalPort = port, Drops = drops }, ct),
            MeshNodeNetworkCheck.RelayProbeTarget(_options.ControlUrl, _options.RelayUrl),
            cancellationToken);
    }

    /// <summary>The DNS server on the node's mesh address (when <see cref="MeshNodeOptions.EnableDns"/> and started).</summary>
    internal MeshDnsServer? DnsServer => _dns;

    /// <summary>
    /// Validates the options, binds the UDP socket and starts the node. Peers with an endpoint are
    /// contacted when there is something to send (or right away with a persistent keepalive).
    /// </summary>
    /// <remarks>
    /// In control mode (<see cref="MeshNodeOptions.ControlUrl"/> set) the node first loads or creates
    /// its key in the state directory and joins the coordinator (with the saved node token, else the
    /// auth key), takes its address from the answer and applies the peer map; a background loop then
    /// keeps the map current. When the coordinator cannot be reached but the state directory holds an
    /// earlier join, the node starts from that (same key, address and peers) and joins in the background.
    /// </remarks>
    /// <exception cref="MeshConfigurationException">An option is invalid; the exception names it.</exception>
    /// <exception cref="MeshControlException">The coordinator refused the join (the exception carries its reason), or could not be reached and no earlier join is saved.</exception>
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
            NodeStateStore? store = null;
            var privateKey = config.PrivateKey;
            if (config.Control is { } control)
            {
                store = new NodeStateStore(control.StateDirectory);
                privateKey = LoadOrCreateKey(store, privateKey);
            }

            _privateKey = privateKey!;
            var transport = _transportFactory is not null
                ? _transportFactory(_options, _pool, _drops)
                : new UdpTransport(new UdpTransportOptions { BindAddress = _options.ListenAddress, Port = _options.ListenPort, Pool = _pool, Drops = _drops });
            MeshControlPlane? controlPlane = null;
            try
            {
                var address = config.Ipv4Address;
                if (config.Control is { } c)
                {
                    var staticKeys = config.Peers.Select(p => p.PublicKey).ToHashSet();
                    var bind = _options.ListenAddress;
                    controlPlane = new MeshControlPlane(
                        c, store!, _privateKey, staticKeys, _names, () => _options.LocalEndpointsForTests?.Invoke(transport.LocalPort) ?? PeerEndpointChooser.Local(bind, transport.LocalPort), _time, _loggerFactory.CreateLogger<MeshControlPlane>(), RaiseStatusChanged);
                    var self = await controlPlane.JoinOrRestoreAsync(cancellationToken).ConfigureAwait(false);
                    address = MeshControlPlane.ParseAddresses(self.Self.Addresses).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                        ?? throw new MeshControlException(null, "the coordinator assigned this node no IPv4 address");
                }

                _address = address!;
                var relay = CreateRelay(controlPlane, config.Control?.Url);
                if (relay is not null)
                {
                    transport = new PathTransport(transport, relay);
                }

                var device = new WireGuardDevice(_privateKey, transport, p => _stack!.DeliverInbound(p), _pool, _drops, _time, _loggerFactory.CreateLogger<WireGuardDevice>());
                uint stackAddress = BinaryPrimitives.ReadUInt32BigEndian(_address.GetAddressBytes());
                var stack = new NetStack(new NetStackOptions { Address = stackAddress, Mtu = config.Mtu }, device, _pool, _drops, _time, _loggerFactory.CreateLogger<NetStack>());
                _stack = stack;
                _device = device;
                _stun = new StunClient(transport, _pool, _drops, _time);
                device.Stun = _stun;
                _transport = transport;
                _relay = relay;
                if (relay is not null)
                {
                    device.EnableRelay(relay.EndpointFor, _options.PathTiming);
                    device.LocalCandidates = controlPlane is not null ? controlPlane.CurrentCandidates : null;
                    device.CarriesConnections = peer => stack.Tcp.HasConnection(a => device.PeerForIPv4(a) == peer);
                }

                foreach (var peer in config.Peers)
                {
                    device.AddPeer(peer);
                }

                controlPlane?.Attach(device);
                device.HandshakeCompleted += OnHandshakeCompleted;
                device.PathChanged += OnPathChanged;
                transport.Start(device);
                await StartDnsAsync(stack).ConfigureAwait(false);
                _meter = CreateMeter();
                _control = controlPlane;
                Volatile.Write(ref _state, 1);
                controlPlane?.StartLoop();
                if (controlPlane is not null)
                {
                    _stunLoop = RunStunAsync(controlPlane, logger, _background.Token);
                    _networkChanges = _options.NetworkChangesForTests ?? NetworkChangeSignal.FromSystem();
                    _networkChanges.Changed += OnNetworkChanged;
                    _portMapping = MeshNodePortMapping.Start(_options, transport.LocalPort, _stun, controlPlane, _drops, _time, _loggerFactory);
                }
                MeshNodeLog.Started(logger, PublicKey, _address, transport.LocalPort, device.Peers.Count());
            }
            catch
            {
                if (controlPlane is not null)
                {
                    await controlPlane.DisposeAsync().ConfigureAwait(false);
                }

                _control = null;

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
                _relay = null;
                throw;
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>A snapshot of the node and its peers: names, addresses, endpoints, paths, online flags, last handshakes.</summary>
    /// <exception cref="InvalidOperationException">The node is not started.</exception>
    public MeshNodeStatus GetStatus()
    {
        var device = _device ?? throw NotStarted();
        var control = _control;
        MeshSelfStatus self;
        if (control is not null)
        {
            var info = control.Self.Self;
            self = new MeshSelfStatus(info.Name, info.Fqdn, MeshControlPlane.ParseAddresses(info.Addresses), PublicKey);
        }
        else
        {
            self = new MeshSelfStatus(null, null, _options.Addresses.ToArray(), PublicKey);
        }

        var map = control?.Peers;
        var peers = new List<MeshPeerStatus>();
        foreach (var peer in device.Peers)
        {
            var endpoint = peer.Endpoint;
            MeshNodeInfo? info = null;
            map?.TryGetValue(peer.PublicKey, out info);
            var addresses = info is not null
                ? MeshControlPlane.ParseAddresses(info.Addresses)
                : peer.Config.AllowedIps.Select(n => n.BaseAddress).ToArray();
            var path = peer.Paths is not null && peer.CurrentPath == PeerPath.Relay ? MeshPeerPath.Relay
                : endpoint.IsSet ? MeshPeerPath.Direct : MeshPeerPath.None;
            var status = new MeshPeerStatus(
                info?.Name,
                info?.Fqdn,
                addresses,
                peer.PublicKey,
                path == MeshPeerPath.Relay
                    ? (peer.Paths!.Direct is { IsSet: true } direct ? direct.ToIPEndPoint() : null) // the relay's pseudo-endpoint means nothing to a user
                    : endpoint.IsSet ? endpoint.ToIPEndPoint() : null,
                path,
                info?.Online ?? true,
                peer.LastHandshake);
            peers.Add(MeshPathStatus.Describe(status, peer.Paths?.Snapshot()));
        }

        peers.Sort(static (a, b) => a.Name is null || b.Name is null
            ? string.CompareOrdinal(a.PublicKey.ToString(), b.PublicKey.ToString())
            : string.CompareOrdinal(a.Name, b.Name));
        return new MeshNodeStatus(self, peers, control?.Connected ?? false, control?.Version ?? 0);
    }

    /// <summary>
    /// Raised (on the thread pool, never on a network thread) when the set of peers or a peer's state
    /// changes: a peer map message that changed something, the map stream connecting or dropping, a
    /// completed handshake, a peer's path moving (relay, direct, another direct endpoint). Bursts are coalesced into one event; it is not raised per packet.
    /// </summary>
    public event EventHandler<MeshStatusChangedEventArgs>? StatusChanged;

    /// <summary>The names of the mesh this node knows (itself and its peers); empty in static mode.</summary>
    internal MeshNameTable Names => _names;

    /// <summary>The control plane (null in static mode or before start).</summary>
    internal MeshControlPlane? Control => _control;

    /// <summary>Asks for a <see cref="StatusChanged"/> event (coalesced: one pending delivery at a time).</summary>
    internal void RaiseStatusChanged()
    {
        if (Volatile.Read(ref _state) == 2 || Interlocked.Exchange(ref _statusPending, 1) != 0)
        {
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(static node => node.DeliverStatusChanged(), this, preferLocal: false);
    }

    private void DeliverStatusChanged()
    {
        Volatile.Write(ref _statusPending, 0);
        if (StatusChanged is not { } handler || Volatile.Read(ref _state) != 1)
        {
            return;
        }

        try
        {
            handler(this, new MeshStatusChangedEventArgs(GetStatus()));
        }
#pragma warning disable CA1031 // an application's handler must not take the thread pool down
        catch (Exception ex)
#pragma warning restore CA1031
        {
            MeshNodeLog.StatusHandlerFailed(_loggerFactory.CreateLogger<MeshNode>(), ex);
        }
    }

    private void OnHandshakeCompleted(WireGuardPeer peer) => RaiseStatusChanged();

    private static NodePrivateKey LoadOrCreateKey(NodeStateStore store, NodePrivateKey? configured)
    {
        store.EnsureDirectory();
        var saved = store.LoadKey();
        if (configured is not null)
        {
            if (saved is not null && !saved.Equals(configured))
            {
                throw new MeshConfigurationException($"{nameof(MeshNodeOptions)}.{nameof(MeshNodeOptions.PrivateKey)}", $"differs from the key saved in {store.Directory}; leave it unset or use another StateDirectory.");
            }

            if (saved is null)
            {
                store.SaveKey(configured);
            }

            return configured;
        }

        if (saved is not null)
        {
            return saved;
        }

        var key = NodePrivateKey.Generate();
        store.SaveKey(key);
        return key;
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

    /// <summary>
    /// Opens a TCP connection to <paramref name="host"/>: an IP address literal, or a mesh name
    /// (<c>name</c> or <c>name.suffix</c>, any case), resolved in process from the peer map.
    /// </summary>
    /// <exception cref="SocketException">
    /// <see cref="SocketError.HostNotFound"/> when <paramref name="host"/> is no IP literal and no mesh
    /// name this node knows (the message names it); otherwise as <see cref="DialAsync(IPAddress, int, CancellationToken)"/>.
    /// </exception>
    public Task<MeshTcpStream> DialAsync(string host, int port, CancellationToken cancellationToken = default) =>
        DialAsync(host, port, null, cancellationToken);

    /// <summary>As <see cref="DialAsync(string, int, CancellationToken)"/>, with the given connection settings.</summary>
    public Task<MeshTcpStream> DialAsync(string host, int port, MeshTcpOptions? options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        return DialAsync(new IPEndPoint(Resolve(host), port), options, cancellationToken);
    }

    /// <summary>Resolves an IP literal or a mesh name to the address dialled (the IPv4 one).</summary>
    /// <exception cref="SocketException"><see cref="SocketError.HostNotFound"/>: not a literal and no known mesh name.</exception>
    internal IPAddress Resolve(string host)
    {
        if (IPAddress.TryParse(host, out var literal))
        {
            return literal;
        }

        if (_names.TryResolve(host, out var addresses))
        {
            return addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                ?? throw new SocketException((int)SocketError.HostNotFound, $"The mesh name '{host}' has no IPv4 address.");
        }

        throw new SocketException(
            (int)SocketError.HostNotFound,
            _names.IsInMesh(host) || _control is not null
                ? $"'{host}' is not a name in this mesh (this node knows {_names.Count} names under .{_names.Suffix})."
                : $"'{host}' is not an IP address, and this node has no coordinator to resolve mesh names.");
    }

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

    /// <summary>
    /// Which peer owns <paramref name="address"/>: for an accepted connection, pass its
    /// <see cref="MeshTcpStream.RemoteEndPoint"/> address to learn who is calling (name, key, tags),
    /// e.g. to authorise by peer identity. Null when no peer's allowed IPs contain the address.
    /// </summary>
    /// <exception cref="InvalidOperationException">The node is not started.</exception>
    public MeshPeerIdentity? WhoIs(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        ThrowIfNotRunning();
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (Device.PeerFor(address) is not { } peer)
        {
            return null;
        }

        MeshNodeInfo? info = null;
        _control?.Peers.TryGetValue(peer.PublicKey, out info);
        return new MeshPeerIdentity(
            peer.PublicKey,
            info?.Name,
            info?.Fqdn,
            info is not null ? MeshControlPlane.ParseAddresses(info.Addresses) : peer.Config.AllowedIps.Select(n => n.BaseAddress).ToArray(),
            info?.Tags ?? []);
    }

    /// <summary>Who is on the other end of <paramref name="connection"/> (see <see cref="WhoIs(IPAddress)"/>).</summary>
    public MeshPeerIdentity? WhoIs(MeshTcpStream connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return WhoIs(connection.RemoteEndPoint.Address);
    }

    /// <summary>
    /// An <see cref="HttpMessageHandler"/> whose connections go through this node: host names in
    /// request URIs are mesh names (<c>http://beta/</c>, <c>http://beta.tunnelmesh:8080/</c>) or
    /// mesh IP literals. Use it with <c>new HttpClient(handler)</c> or as the primary handler of a
    /// named client in <c>IHttpClientFactory</c>. HTTPS works as usual (TLS runs over the mesh stream).
    /// </summary>
    public SocketsHttpHandler CreateHttpMessageHandler() => Http.MeshHttp.CreateHandler(this);

    /// <summary>An <see cref="HttpClient"/> that reaches mesh services by name (see <see cref="CreateHttpMessageHandler"/>).</summary>
    /// <example>
    /// <code>
    /// using var http = node.CreateHttpClient();
    /// string text = await http.GetStringAsync("http://beta/hello");
    /// </code>
    /// </example>
    public HttpClient CreateHttpClient() => new(CreateHttpMessageHandler(), disposeHandler: true);

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
            if (_networkChanges is not null)
            {
                _networkChanges.Changed -= OnNetworkChanged;
                if (_networkChanges != _options.NetworkChangesForTests)
                {
                    _networkChanges.Dispose();
                }
            }

            await _background.CancelAsync().ConfigureAwait(false);
            if (_stunLoop is not null)
            {
                await _stunLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            _background.Dispose();
            if (_portMapping is not null)
            {
                await _portMapping.DisposeAsync().ConfigureAwait(false); // deletes the mapping at the gateway (at most 2 s)
            }

            if (_control is not null)
            {
                await _control.DisposeAsync().ConfigureAwait(false);
            }

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

    /// <summary>
    /// The relay transport: at <see cref="MeshNodeOptions.RelayUrl"/> when set, otherwise in control
    /// mode the coordinator's relay (<c>&lt;ControlUrl&gt;/api/v1/relay</c>) with the node token of the
    /// latest join; null for a static node without a relay.
    /// </summary>
    private RelayTransport? CreateRelay(MeshControlPlane? control, Uri? controlUrl)
    {
        if (_options.RelayUrl is { } url)
        {
            return new RelayTransport(
                new RelayTransportOptions { Url = url, Token = _options.RelayToken, Pool = _pool, Drops = _drops, Time = _time },
                _loggerFactory.CreateLogger<RelayTransport>());
        }

        if (control is null || controlUrl is null)
        {
            return null;
        }

        return new RelayTransport(
            new RelayTransportOptions { Url = new Uri(controlUrl.AbsoluteUri.TrimEnd('/') + "/api/v1/relay"), TokenProvider = () => control.Token, Pool = _pool, Drops = _drops, Time = _time },
            _loggerFactory.CreateLogger<RelayTransport>());
    }

    private async Task StartDnsAsync(NetStack stack)
    {
        if (!_options.EnableDns)
        {
            return;
        }

        if (_options.DnsUpstream is { Port: 0 })
        {
            throw new MeshConfigurationException($"{nameof(MeshNodeOptions)}.{nameof(MeshNodeOptions.DnsUpstream)}", "The upstream DNS server needs a port (usually 53).");
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

    [LoggerMessage(3, LogLevel.Information, "Reflexive endpoint {Endpoint} (STUN server {Server})")]
    public static partial void ReflexiveEndpoint(ILogger logger, string endpoint, string server);

    [LoggerMessage(4, LogLevel.Debug, "STUN server {Server} did not give a reflexive endpoint: {Reason}")]
    public static partial void StunFailed(ILogger logger, string server, string reason);

    [LoggerMessage(20, LogLevel.Information, "The network changed: running STUN, reporting endpoints and probing peers again")]
    public static partial void NetworkChanged(ILogger logger);

    [LoggerMessage(21, LogLevel.Information, "The node's public address moved ({Endpoint}): reconnecting to the coordinator and its relay, and calling peers through the relay")]
    public static partial void PublicAddressMoved(ILogger logger, string endpoint);

    [LoggerMessage(2, LogLevel.Warning, "A StatusChanged handler threw")]
    public static partial void StatusHandlerFailed(ILogger logger, Exception exception);
}
