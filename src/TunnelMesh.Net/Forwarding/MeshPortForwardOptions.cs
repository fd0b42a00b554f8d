using System.Net;

namespace TunnelMesh.Net.Forwarding;

/// <summary>Settings of a <see cref="MeshPortForwarder"/>; validated by <see cref="MeshPortForwarder.StartAsync"/>.</summary>
public sealed class MeshPortForwardOptions
{
    /// <summary>The TCP port on the node's mesh address that peers connect to.</summary>
    /// <remarks>Required; 1-65535. No other listener of the node may use it.</remarks>
    public int MeshPort { get; set; }

    /// <summary>
    /// The TCP service each connection is forwarded to, on <b>this host's own network</b> (not on the mesh):
    /// typically a loopback service such as <c>127.0.0.1:3000</c>, or a <see cref="DnsEndPoint"/> resolved by
    /// the host's resolver at every connection (<c>localhost:5432</c>, <c>db.lan:5432</c>).
    /// </summary>
    /// <remarks>Required; an <see cref="IPEndPoint"/> or a <see cref="DnsEndPoint"/> with a port of 1-65535.
    /// <see cref="ParseTarget"/> reads one from <c>host:port</c> or <c>[IPv6]:port</c>.</remarks>
    public EndPoint? Target { get; set; }

    /// <summary>How long the connection to <see cref="Target"/> may take before the mesh connection is reset.</summary>
    /// <remarks>Default 10 seconds; 1 ms to 10 minutes.</remarks>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How many forwarded connections may be open at once.</summary>
    /// <remarks>Default 1024; 1 to 1,000,000. A connection beyond the limit is reset at once and counted in
    /// <see cref="MeshPortForwardStatistics.Rejected"/>.</remarks>
    public int MaxConnections { get; set; } = 1024;

    /// <summary>
    /// When not empty, only peers whose identity (<see cref="MeshNode.WhoIs(MeshTcpStream)"/>) carries one of
    /// these tags (<c>tag:name</c> or <c>name</c>, any case) may connect; the others are reset and counted in
    /// <see cref="MeshPortForwardStatistics.Denied"/>.
    /// </summary>
    /// <remarks>Default empty: every peer that the node's packet filter lets in may connect. Tags come from the
    /// auth key a node joined with, so a static peer (configured without a coordinator) has none and is refused
    /// whenever this list is set.</remarks>
    public IList<string> AllowedTags { get; } = new List<string>();

    /// <summary>Parses a target written <c>host:port</c>, <c>1.2.3.4:port</c> or <c>[IPv6]:port</c> (as a wg-quick Endpoint).</summary>
    /// <exception cref="MeshConfigurationException">The text is not one of these forms (the exception names <see cref="Target"/>).</exception>
    public static EndPoint ParseTarget(string target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return WgQuickConfig.ParseEndpoint(target.Trim())
            ?? throw new MeshConfigurationException($"{nameof(MeshPortForwardOptions)}.{nameof(Target)}", $"'{target}' is not host:port, IPv4:port or [IPv6]:port with a port of 1-65535.");
    }

    /// <summary>A copy (taken at start, so later changes do not affect a running forwarder).</summary>
    internal MeshPortForwardOptions Clone()
    {
        var copy = new MeshPortForwardOptions
        {
            MeshPort = MeshPort,
            Target = Target,
            ConnectTimeout = ConnectTimeout,
            MaxConnections = MaxConnections,
        };
        foreach (string tag in AllowedTags)
        {
            copy.AllowedTags.Add(tag);
        }

        return copy;
    }

    /// <summary>Throws <see cref="MeshConfigurationException"/> naming the first invalid option.</summary>
    internal void Validate()
    {
        const string O = nameof(MeshPortForwardOptions);
        if (MeshPort is < 1 or > 65535)
        {
            throw new MeshConfigurationException($"{O}.{nameof(MeshPort)}", MeshPort == 0 ? "is required (1-65535)." : $"{MeshPort} is outside 1-65535.");
        }

        switch (Target)
        {
            case null:
                throw new MeshConfigurationException($"{O}.{nameof(Target)}", "is required (the host's own service, e.g. 127.0.0.1:3000).");
            case IPEndPoint ip when ip.Port is < 1 or > 65535:
                throw new MeshConfigurationException($"{O}.{nameof(Target)}", $"{ip}: the port must be 1-65535.");
            case DnsEndPoint dns when string.IsNullOrWhiteSpace(dns.Host) || dns.Port is < 1 or > 65535:
                throw new MeshConfigurationException($"{O}.{nameof(Target)}", $"{dns.Host}:{dns.Port}: needs a host name and a port of 1-65535.");
            case IPEndPoint or DnsEndPoint:
                break;
            default:
                throw new MeshConfigurationException($"{O}.{nameof(Target)}", $"a {Target.GetType().Name} is not supported (use an IPEndPoint or a DnsEndPoint).");
        }

        if (ConnectTimeout < TimeSpan.FromMilliseconds(1) || ConnectTimeout > TimeSpan.FromMinutes(10))
        {
            throw new MeshConfigurationException($"{O}.{nameof(ConnectTimeout)}", $"{ConnectTimeout} is outside 1 ms to 10 minutes.");
        }

        if (MaxConnections is < 1 or > 1_000_000)
        {
            throw new MeshConfigurationException($"{O}.{nameof(MaxConnections)}", $"{MaxConnections} is outside 1-1000000.");
        }

        foreach (string tag in AllowedTags)
        {
            if (string.IsNullOrWhiteSpace(tag) || tag.Equals("tag:", StringComparison.OrdinalIgnoreCase))
            {
                throw new MeshConfigurationException($"{O}.{nameof(AllowedTags)}", "an entry is empty; each is a tag name such as tag:web.");
            }
        }
    }
}
