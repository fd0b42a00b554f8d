using System.Globalization;
using System.Net;
using Microsoft.Extensions.Configuration;

namespace TunnelMesh.Net.Hosting;

/// <summary>
/// Reads <see cref="MeshNodeOptions"/> from a configuration section (appsettings.json, environment
/// variables, command line). Keys are the option names (any case); lists are arrays or comma-separated
/// strings. Every value is checked here, and an unknown key is an error too (a typo must not silently
/// leave an option at its default): the <see cref="MeshConfigurationException"/> names the key by
/// its configuration path, e.g. <c>MeshNode:Peers:0:Endpoint</c>.
/// </summary>
internal static class MeshNodeConfiguration
{
    private static readonly HashSet<string> NodeKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        nameof(MeshNodeOptions.PrivateKey), nameof(MeshNodeOptions.ListenPort), nameof(MeshNodeOptions.ListenAddress),
        nameof(MeshNodeOptions.Addresses), nameof(MeshNodeOptions.Mtu), nameof(MeshNodeOptions.Peers),
        nameof(MeshNodeOptions.ControlUrl), nameof(MeshNodeOptions.AuthKey), nameof(MeshNodeOptions.Hostname),
        nameof(MeshNodeOptions.StateDirectory), nameof(MeshNodeOptions.Ephemeral), nameof(MeshNodeOptions.RelayUrl),
        nameof(MeshNodeOptions.RelayToken), nameof(MeshNodeOptions.EnableDns), nameof(MeshNodeOptions.DnsUpstream),
    };

    private static readonly HashSet<string> PeerKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        nameof(MeshPeerOptions.PublicKey), nameof(MeshPeerOptions.PresharedKey), nameof(MeshPeerOptions.Endpoint),
        nameof(MeshPeerOptions.AllowedIPs), nameof(MeshPeerOptions.PersistentKeepalive),
    };

    /// <summary>Applies the values present in <paramref name="section"/> to <paramref name="options"/>; absent keys keep their defaults.</summary>
    /// <exception cref="MeshConfigurationException">A key is unknown or a value is malformed; the exception names the key's path.</exception>
    public static void Bind(IConfiguration section, MeshNodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(options);
        foreach (var child in section.GetChildren())
        {
            if (!NodeKeys.Contains(child.Key))
            {
                throw new MeshConfigurationException(child.Path, $"is not an option of {nameof(MeshNodeOptions)} (known: {string.Join(", ", NodeKeys.Order(StringComparer.Ordinal))}).");
            }
        }

        Read(section, nameof(MeshNodeOptions.PrivateKey), (path, v) => options.PrivateKey = NodePrivateKey.TryParse(v, out var key)
            ? key : throw Bad(path, "is not a base64 32-byte key (as 'wg genkey' prints)"));
        Read(section, nameof(MeshNodeOptions.ListenPort), (path, v) => options.ListenPort = Port(path, v, allowZero: true));
        Read(section, nameof(MeshNodeOptions.ListenAddress), (path, v) => options.ListenAddress = Address(path, v));
        foreach (var (path, v) in List(section, nameof(MeshNodeOptions.Addresses)))
        {
            options.Addresses.Add(Address(path, v));
        }

        Read(section, nameof(MeshNodeOptions.Mtu), (path, v) => options.Mtu = Int(path, v));
        Read(section, nameof(MeshNodeOptions.ControlUrl), (path, v) => options.ControlUrl = AbsoluteUri(path, v));
        Read(section, nameof(MeshNodeOptions.AuthKey), (_, v) => options.AuthKey = v);
        Read(section, nameof(MeshNodeOptions.Hostname), (_, v) => options.Hostname = v);
        Read(section, nameof(MeshNodeOptions.StateDirectory), (_, v) => options.StateDirectory = v);
        Read(section, nameof(MeshNodeOptions.Ephemeral), (path, v) => options.Ephemeral = Bool(path, v));
        Read(section, nameof(MeshNodeOptions.RelayUrl), (path, v) => options.RelayUrl = AbsoluteUri(path, v));
        Read(section, nameof(MeshNodeOptions.RelayToken), (_, v) => options.RelayToken = v);
        Read(section, nameof(MeshNodeOptions.EnableDns), (path, v) => options.EnableDns = Bool(path, v));
        Read(section, nameof(MeshNodeOptions.DnsUpstream), (path, v) => options.DnsUpstream = WgQuickConfig.ParseEndpoint(v) is IPEndPoint ip
            ? ip : throw Bad(path, $"'{v}' is not an IP address and port (e.g. 1.1.1.1:53)"));

        foreach (var peerSection in section.GetSection(nameof(MeshNodeOptions.Peers)).GetChildren())
        {
            options.Peers.Add(BindPeer(peerSection));
        }
    }

    private static MeshPeerOptions BindPeer(IConfigurationSection section)
    {
        foreach (var child in section.GetChildren())
        {
            if (!PeerKeys.Contains(child.Key))
            {
                throw new MeshConfigurationException(child.Path, $"is not an option of {nameof(MeshPeerOptions)} (known: {string.Join(", ", PeerKeys.Order(StringComparer.Ordinal))}).");
            }
        }

        var peer = new MeshPeerOptions();
        Read(section, nameof(MeshPeerOptions.PublicKey), (path, v) => peer.PublicKey = NodePublicKey.TryParse(v, out var key)
            ? key : throw Bad(path, "is not a base64 32-byte public key"));
        if (!peer.PublicKey.IsSet)
        {
            throw new MeshConfigurationException(section.Path + ":" + nameof(MeshPeerOptions.PublicKey), "is required for every peer.");
        }

        Read(section, nameof(MeshPeerOptions.PresharedKey), (_, v) => peer.PresharedKey = v);
        Read(section, nameof(MeshPeerOptions.Endpoint), (path, v) => peer.Endpoint = WgQuickConfig.ParseEndpoint(v)
            ?? throw Bad(path, $"'{v}' is not host:port (IPv6 in brackets: [::1]:51820)"));
        foreach (var (path, v) in List(section, nameof(MeshPeerOptions.AllowedIPs)))
        {
            peer.AllowedIPs.Add(IPNetworkLoose.TryParse(v, out var network) ? network : throw Bad(path, $"'{v}' is not an address or prefix (e.g. 100.64.0.2/32)"));
        }

        Read(section, nameof(MeshPeerOptions.PersistentKeepalive), (path, v) => peer.PersistentKeepalive = Duration(path, v));
        return peer;
    }

    /// <summary>Calls <paramref name="apply"/> with the key's path and value when the key has a (non-empty) value.</summary>
    private static void Read(IConfiguration section, string key, Action<string, string> apply)
    {
        var child = section.GetSection(key);
        if (!string.IsNullOrWhiteSpace(child.Value))
        {
            apply(child.Path, child.Value.Trim());
        }
        else if (child.GetChildren().Any())
        {
            throw Bad(child.Path, "must be a single value, not a section or array");
        }
    }

    /// <summary>A list given as an array (<c>Key:0</c>, <c>Key:1</c>, …) or as one comma-separated value.</summary>
    private static IEnumerable<(string Path, string Value)> List(IConfiguration section, string key)
    {
        var child = section.GetSection(key);
        if (!string.IsNullOrWhiteSpace(child.Value))
        {
            foreach (string item in child.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                yield return (child.Path, item);
            }

            yield break;
        }

        foreach (var item in child.GetChildren())
        {
            if (string.IsNullOrWhiteSpace(item.Value))
            {
                throw Bad(item.Path, "must be a single value");
            }

            yield return (item.Path, item.Value.Trim());
        }
    }

    private static int Int(string path, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) ? n : throw Bad(path, $"'{value}' is not a whole number");

    private static int Port(string path, string value, bool allowZero)
    {
        int port = Int(path, value);
        return port is >= 0 and <= 65535 && (allowZero || port != 0) ? port : throw Bad(path, $"{port} is not a port number ({(allowZero ? 0 : 1)}-65535)");
    }

    private static bool Bool(string path, string value) =>
        bool.TryParse(value, out bool b) ? b : throw Bad(path, $"'{value}' is not true or false");

    private static IPAddress Address(string path, string value) =>
        IPAddress.TryParse(value, out var address) ? address : throw Bad(path, $"'{value}' is not an IP address");

    private static Uri AbsoluteUri(string path, string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? uri : throw Bad(path, $"'{value}' is not an absolute http(s) URL");

    /// <summary>Seconds ("25") or a TimeSpan ("00:00:25"); "off" or "0" for none.</summary>
    private static TimeSpan? Duration(string path, string value)
    {
        if (value.Equals("off", StringComparison.OrdinalIgnoreCase) || value == "0")
        {
            return null;
        }

        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds))
        {
            return TimeSpan.FromSeconds(seconds);
        }

        return TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var span) && span >= TimeSpan.Zero
            ? span : throw Bad(path, $"'{value}' is not a number of seconds, a time span (hh:mm:ss) or 'off'");
    }

    private static MeshConfigurationException Bad(string path, string message) => new(path, message);
}
