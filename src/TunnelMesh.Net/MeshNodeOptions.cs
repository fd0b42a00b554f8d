using System.Net;

namespace TunnelMesh.Net;

/// <summary>
/// Configuration of a <see cref="MeshNode"/>: its key, its mesh addresses, the UDP port it listens
/// on, and its peers. Validated by <see cref="MeshNode.StartAsync"/>; a bad value fails there with
/// a <see cref="MeshConfigurationException"/> that names the option.
/// </summary>
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
    public IList<MeshPeerOptions> Peers { get; } = new List<MeshPeerOptions>();

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
