using System.Net;

namespace TunnelMesh.Net;

/// <summary>
/// Configuration of a <see cref="MeshNode"/>: its key, its mesh addresses, the UDP port it listens
/// on, and its peers. Validated by <see cref="MeshNode.StartAsync"/>; a bad value fails there with
/// a <see cref="MeshConfigurationException"/> that names the option.
/// </summary>
/// <remarks>
/// <para>
/// Two modes. <b>Static</b> (no <see cref="ControlUrl"/>): the key, <see cref="Addresses"/> and
/// <see cref="Peers"/> are given, as in a wg-quick file. <b>Control</b> (<see cref="ControlUrl"/>
/// set): the node joins the coordinator with <see cref="AuthKey"/>, which assigns its addresses and
/// name and pushes its peers; the key is created once and kept in <see cref="StateDirectory"/>.
/// </para>
/// <para>
/// In control mode <see cref="Addresses"/> must stay empty (the coordinator assigns the address; a
/// static one would conflict and fails validation). <see cref="Peers"/> may be combined with the
/// coordinator's peers: they are added as given and never changed by the peer map (a map entry with
/// the same key is ignored), e.g. a phone running a stock WireGuard app. <see cref="PrivateKey"/> is
/// optional; when given it must match the key in <see cref="StateDirectory"/>, if one is there.
/// </para>
/// </remarks>
public sealed class MeshNodeOptions
{
    /// <summary>The node's private key (its identity). Required.</summary>
    public NodePrivateKey? PrivateKey { get; set; }

    /// <summary>UDP port for WireGuard messages.</summary>
    /// <remarks>Default 0: an ephemeral port chosen by the OS (read it back from <see cref="MeshNode.ListenPort"/>).</remarks>
    public int ListenPort { get; set; }

    /// <summary>The local address the UDP socket binds to.</summary>
    /// <remarks>Default <see cref="IPAddress.IPv6Any"/> (dual-stack: IPv4 and IPv6).</remarks>
    public IPAddress ListenAddress { get; set; } = IPAddress.IPv6Any;

    /// <summary>The node's addresses inside the mesh (wg-quick's <c>Address</c>). At least one IPv4 address is required.</summary>
    public IList<IPAddress> Addresses { get; } = new List<IPAddress>();

    /// <summary>MTU of the mesh interface: the largest IP packet sent through the tunnel.</summary>
    /// <remarks>Default 1420 (as WireGuard: 1500 minus 80 bytes of IPv6, UDP and WireGuard overhead). Range 576–65475.</remarks>
    public int Mtu { get; set; } = 1420;

    /// <summary>The peers.</summary>
    /// <remarks>In control mode these are added beside the coordinator's peers (see the class remarks).</remarks>
    public IList<MeshPeerOptions> Peers { get; } = new List<MeshPeerOptions>();

    /// <summary>The coordinator's base URL (http or https; the API is under <c>/api/v1</c> below it). Setting it selects control mode.</summary>
    /// <remarks>Default none (static mode). Use https outside a lab: the auth key and the node token travel in the requests.</remarks>
    public Uri? ControlUrl { get; set; }

    /// <summary>The auth key to join with (<c>tmkey-…</c>, from the coordinator's administrator).</summary>
    /// <remarks>
    /// Required for the first join; not needed once <see cref="StateDirectory"/> holds the node token
    /// from an earlier join (the node then re-joins with the token). Never logged.
    /// </remarks>
    public string? AuthKey { get; set; }

    /// <summary>The name the node asks for in the mesh (the coordinator makes it a DNS label and unique).</summary>
    /// <remarks>Default <see cref="Environment.MachineName"/>.</remarks>
    public string? Hostname { get; set; }

    /// <summary>
    /// Where a node in control mode keeps its key, its node token, its last join answer and its last
    /// peer map (files mode 0600 in a directory made with mode 0700, each written atomically), so that
    /// it restarts with the same identity and address and can start while the coordinator is down.
    /// </summary>
    /// <remarks>
    /// Default none: nothing is kept, and each start is a new node (a new key unless
    /// <see cref="PrivateKey"/> is set) that needs the coordinator and <see cref="AuthKey"/>. Without a
    /// state directory and without <see cref="PrivateKey"/> the node joins as ephemeral (see
    /// <see cref="Ephemeral"/>), so that restarts do not leave dead nodes in the mesh.
    /// </remarks>
    public string? StateDirectory { get; set; }

    /// <summary>Ask the coordinator to remove this node after it has been offline for the mesh's ephemeral timeout.</summary>
    /// <remarks>
    /// Default false, but a node with neither <see cref="StateDirectory"/> nor <see cref="PrivateKey"/>
    /// joins as ephemeral anyway: its next start is a new node with a new key, so its entry could never
    /// be used again. An ephemeral auth key makes the node ephemeral regardless.
    /// </remarks>
    public bool Ephemeral { get; set; }

    /// <summary>
    /// The coordinator's relay endpoint (<c>wss://…/relay</c>; <c>https</c>, <c>ws</c> and <c>http</c> work too).
    /// With it, every peer is reachable through the relay from its first packet and moves to direct UDP
    /// once a probe succeeds; it falls back to the relay when the direct path stops answering.
    /// </summary>
    /// <remarks>Default none: peers are reached over UDP only. The control client sets it from the coordinator.</remarks>
    public Uri? RelayUrl { get; set; }

    /// <summary>The node's bearer token for the relay (its node token from the coordinator).</summary>
    /// <remarks>Default none. Required with <see cref="RelayUrl"/>. Never logged.</remarks>
    public string? RelayToken { get; set; }

    /// <summary>Timing of the direct/relay path choice (tests shorten it).</summary>
    internal WireGuard.PathTiming PathTiming { get; set; } = WireGuard.PathTiming.Default;

    /// <summary>
    /// Tests only: the node's own endpoints to publish, from its UDP port, instead of its interface
    /// addresses (so a test can publish an endpoint that never answers before the one that does).
    /// </summary>
    internal Func<int, IReadOnlyList<string>>? LocalEndpointsForTests { get; set; }

    /// <summary>Tests only: the signal of network changes, instead of the operating system's address-change notifications.</summary>
    internal Control.NetworkChangeSignal? NetworkChangesForTests { get; set; }
    /// <summary>
    /// Whether a node in control mode asks its gateway (the IPv4 default route's router) to map its
    /// WireGuard UDP port, with PCP (RFC 6887), NAT-PMP (RFC 6886) or UPnP IGD, and publishes the mapped
    /// external endpoint as one more candidate for its peers.
    /// </summary>
    /// <remarks>
    /// Default true (as Tailscale does): a home router that offers a mapping turns a hard NAT, or a NAT
    /// whose peer is also behind a hard one, into a direct path instead of the relay. The gateway is
    /// asked only once STUN shows the node behind a NAT (its reflexive address is none of its own) and
    /// never when <see cref="ListenAddress"/> is loopback; each attempt sends at most 3 requests
    /// (250 ms, 500 ms, 1 s apart) per protocol (UPnP: an SSDP search unicast to the gateway, then HTTP
    /// to the gateway only, 2 s and 64 KiB per exchange), a failed one is retried after 1 min doubling to 30 min,
    /// a mapping is renewed at half its lifetime (2 h asked) and deleted when the node stops.
    /// Responses not from the gateway's address and port 5351, or not answering the request in flight,
    /// are dropped and counted (<see cref="DropReason.PortMappingUnmatched"/>). Set false where the
    /// network's policy forbids port mappings.
    /// </remarks>
    public bool EnablePortMapping { get; set; } = true;

    /// <summary>Whether the node answers DNS for the mesh's names on its mesh address, UDP and TCP port 53.</summary>
    /// <remarks>
    /// Default true. Mesh names (<c>name.tunnelmesh</c>) get A and AAAA records, mesh addresses PTR
    /// records, all with a TTL of 60 s; other names are refused unless <see cref="DnsUpstream"/> is set.
    /// Port 53 of the node is then taken; set false to bind it yourself.
    /// </remarks>
    public bool EnableDns { get; set; } = true;

    /// <summary>A DNS server (reachable from this host's own network) that names outside the mesh are forwarded to.</summary>
    /// <remarks>Default none: such queries are answered REFUSED. Forwarded over UDP, 2 s per attempt, 2 attempts, then SERVFAIL.</remarks>
    public IPEndPoint? DnsUpstream { get; set; }

    /// <summary>Reads options from a wg-quick configuration (the text of a <c>wg0.conf</c>).</summary>
    /// <exception cref="MeshConfigurationException">A line is not valid; the message gives its number.</exception>
    public static MeshNodeOptions FromWgQuick(string text) => WgQuickConfig.Parse(text);

    /// <summary>Reads options from a wg-quick configuration file.</summary>
    /// <exception cref="MeshConfigurationException">A line is not valid; the message gives its number.</exception>
    public static async Task<MeshNodeOptions> FromWgQuickFileAsync(string path, CancellationToken cancellationToken = default)
    {
        string text = await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
        return WgQuickConfig.Parse(text, path);
    }
}

/// <summary>One WireGuard peer of a node.</summary>
public sealed class MeshPeerOptions
{
    /// <summary>The peer's public key. Required.</summary>
    public NodePublicKey PublicKey { get; set; }

    /// <summary>Optional preshared key, base64 (as <c>wg genpsk</c> prints it), mixed into the handshake.</summary>
    /// <remarks>Default none.</remarks>
    public string? PresharedKey { get; set; }

    /// <summary>Where to send to the peer first: an <see cref="IPEndPoint"/> or a <see cref="DnsEndPoint"/> (resolved at start).</summary>
    /// <remarks>Default none: the peer's endpoint is learned from its first authenticated packet (roaming).</remarks>
    public EndPoint? Endpoint { get; set; }

    /// <summary>The addresses the peer may use as a source and that are routed to it (longest prefix wins).</summary>
    public IList<IPNetwork> AllowedIPs { get; } = new List<IPNetwork>();

    /// <summary>Send a keepalive this often even when idle, to keep NAT mappings open.</summary>
    /// <remarks>Default none (off). 1 s to 65535 s.</remarks>
    public TimeSpan? PersistentKeepalive { get; set; }
}

/// <summary>A configuration value is invalid. <see cref="Option"/> names it.</summary>
public sealed class MeshConfigurationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MeshConfigurationException(string option, string message)
        : base($"{option}: {message}") => Option = option;

    /// <summary>Creates the exception for a line of a configuration file.</summary>
    public MeshConfigurationException(string option, string message, string? file, int line)
        : base($"{file ?? "config"}, line {line}: {option}: {message}")
    {
        Option = option;
        Line = line;
    }

    /// <summary>Creates the exception.</summary>
    public MeshConfigurationException()
        : this("(unknown)", "invalid configuration")
    {
    }

    /// <summary>Creates the exception.</summary>
    public MeshConfigurationException(string message)
        : this("(unknown)", message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public MeshConfigurationException(string message, Exception innerException)
        : base(message, innerException) => Option = "(unknown)";

    /// <summary>The option (or wg-quick key) that is wrong.</summary>
    public string Option { get; } = "(unknown)";

    /// <summary>The line of the configuration file, when the options came from one.</summary>
    public int? Line { get; }
}
