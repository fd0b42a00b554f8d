using System.Globalization;
using System.Net;

namespace TunnelMesh.Net;

/// <summary>
/// Reads the wg-quick file format: <c>[Interface]</c> with PrivateKey, ListenPort, Address, MTU
/// (and wg-quick's host-side keys DNS, Table, PreUp/PostUp/PreDown/PostDown, SaveConfig, FwMark,
/// which a userspace node ignores), and <c>[Peer]</c> sections with PublicKey, PresharedKey,
/// Endpoint, AllowedIPs and PersistentKeepalive. Keys are case-insensitive, <c>#</c> starts a
/// comment, and list values are comma-separated and may repeat, as in wg-quick.
/// </summary>
internal static class WgQuickConfig
{
    private static readonly HashSet<string> IgnoredInterfaceKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "DNS", "Table", "PreUp", "PostUp", "PreDown", "PostDown", "SaveConfig", "FwMark",
    };

    public static MeshNodeOptions Parse(string text, string? fileName = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var options = new MeshNodeOptions();
        MeshPeerOptions? peer = null;
        string? section = null;
        bool sawInterface = false;
        int lineNumber = 0;
        var peerLines = new Dictionary<MeshPeerOptions, int>();

        foreach (var rawLine in text.Split('\n'))
        {
            lineNumber++;
            var line = rawLine;
            int hash = line.IndexOf('#', StringComparison.Ordinal);
            if (hash >= 0)
            {
                line = line[..hash];
            }

            line = line.Trim();
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith('['))
            {
                if (!line.EndsWith(']'))
                {
                    throw Error(line, "a section header is [Interface] or [Peer]", fileName, lineNumber);
                }

                section = line[1..^1].Trim();
                if (section.Equals("Interface", StringComparison.OrdinalIgnoreCase))
                {
                    if (sawInterface)
                    {
                        throw Error("[Interface]", "only one [Interface] section is allowed", fileName, lineNumber);
                    }

                    sawInterface = true;
                    peer = null;
                }
                else if (section.Equals("Peer", StringComparison.OrdinalIgnoreCase))
                {
                    peer = new MeshPeerOptions();
                    options.Peers.Add(peer);
                    peerLines[peer] = lineNumber;
                }
                else
                {
                    throw Error(line, "unknown section (expected [Interface] or [Peer])", fileName, lineNumber);
                }

                continue;
            }

            int eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw Error(line, "expected 'Key = Value'", fileName, lineNumber);
            }

            string key = line[..eq].Trim();
            string value = line[(eq + 1)..].Trim();
            if (section is null)
            {
                throw Error(key, "appears before any [Interface] or [Peer] section", fileName, lineNumber);
            }

            if (peer is null)
            {
                ParseInterfaceKey(options, key, value, fileName, lineNumber);
            }
            else
            {
                ParsePeerKey(peer, key, value, fileName, lineNumber);
            }
        }

        if (!sawInterface)
        {
            throw Error("[Interface]", "the file has no [Interface] section", fileName, lineNumber);
        }

        foreach (var (p, line) in peerLines)
        {
            if (!p.PublicKey.IsSet)
            {
                throw Error("PublicKey", "every [Peer] needs a PublicKey", fileName, line);
            }
        }

        return options;
    }

    private static void ParseInterfaceKey(MeshNodeOptions options, string key, string value, string? file, int line)
    {
        switch (key.ToUpperInvariant())
        {
            case "PRIVATEKEY":
                options.PrivateKey = NodePrivateKey.TryParse(value, out var privateKey)
                    ? privateKey
                    : throw Error(key, "not a base64 32-byte key (as 'wg genkey' prints)", file, line);
                break;
            case "LISTENPORT":
                options.ListenPort = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port <= 65535
                    ? port
                    : throw Error(key, $"'{value}' is not a port number (0-65535)", file, line);
                break;
            case "ADDRESS":
                foreach (var item in SplitList(value))
                {
                    string address = item.Split('/')[0];
                    if (!IPAddress.TryParse(address, out var ip) || (item.Contains('/', StringComparison.Ordinal) && !IPNetworkLoose.TryParsePrefixLength(item, ip, out _)))
                    {
                        throw Error(key, $"'{item}' is not an address with an optional /prefix", file, line);
                    }

                    options.Addresses.Add(ip);
                }

                break;
            case "MTU":
                options.Mtu = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int mtu)
                    ? mtu
                    : throw Error(key, $"'{value}' is not a number", file, line);
                break;
            default:
                if (!IgnoredInterfaceKeys.Contains(key))
                {
                    throw Error(key, "unknown key in [Interface]", file, line);
                }

                break;
        }
    }

    private static void ParsePeerKey(MeshPeerOptions peer, string key, string value, string? file, int line)
    {
        switch (key.ToUpperInvariant())
        {
            case "PUBLICKEY":
                peer.PublicKey = NodePublicKey.TryParse(value, out var publicKey)
                    ? publicKey
                    : throw Error(key, "not a base64 32-byte key (as 'wg pubkey' prints)", file, line);
                break;
            case "PRESHAREDKEY":
                Span<byte> psk = stackalloc byte[32];
                peer.PresharedKey = KeyText.TryDecode(value, psk)
                    ? value
                    : throw Error(key, "not a base64 32-byte key (as 'wg genpsk' prints)", file, line);
                break;
            case "ENDPOINT":
                peer.Endpoint = ParseEndpoint(value) ?? throw Error(key, $"'{value}' is not host:port or [IPv6]:port", file, line);
                break;
            case "ALLOWEDIPS":
                foreach (var item in SplitList(value))
                {
                    peer.AllowedIPs.Add(IPNetworkLoose.TryParse(item, out var network)
                        ? network
                        : throw Error(key, $"'{item}' is not an address/prefix", file, line));
                }

                break;
            case "PERSISTENTKEEPALIVE":
                if (value.Equals("off", StringComparison.OrdinalIgnoreCase))
                {
                    peer.PersistentKeepalive = null;
                }
                else if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds) && seconds <= 65535)
                {
                    peer.PersistentKeepalive = seconds == 0 ? null : TimeSpan.FromSeconds(seconds);
                }
                else
                {
                    throw Error(key, $"'{value}' is not a number of seconds (0-65535) or 'off'", file, line);
                }

                break;
            default:
                throw Error(key, "unknown key in [Peer]", file, line);
        }
    }

    /// <summary>Parses "1.2.3.4:51820", "[::1]:51820" or "host.example:51820".</summary>
    internal static EndPoint? ParseEndpoint(string value)
    {
        int colon = value.LastIndexOf(':');
        if (colon <= 0 || !ushort.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out ushort port) || port == 0)
        {
            return null;
        }

        var host = value[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            return IPAddress.TryParse(host[1..^1], out var v6) ? new IPEndPoint(v6, port) : null;
        }

        if (host.Contains(':', StringComparison.Ordinal))
        {
            return null; // a bare IPv6 address needs brackets
        }

        if (IPAddress.TryParse(host, out var ip))
        {
            return new IPEndPoint(ip, port);
        }

        return Uri.CheckHostName(host) == UriHostNameType.Dns ? new DnsEndPoint(host, port) : null;
    }

    private static string[] SplitList(string value) =>
        value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static MeshConfigurationException Error(string key, string message, string? file, int line) => new(key, message, file, line);
}

/// <summary>Prefix parsing that accepts host bits (as wg does: 10.0.0.1/24 means 10.0.0.0/24).</summary>
internal static class IPNetworkLoose
{
    public static bool TryParse(string text, out IPNetwork network)
    {
        network = default;
        var parts = text.Split('/');
        if (parts.Length > 2 || !IPAddress.TryParse(parts[0], out var address))
        {
            return false;
        }

        if (!TryParsePrefixLength(text, address, out int prefix))
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int n);
        bytes = bytes[..n];
        for (int bit = prefix; bit < n * 8; bit++)
        {
            bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        }

        network = new IPNetwork(new IPAddress(bytes), prefix);
        return true;
    }

    public static bool TryParsePrefixLength(string text, IPAddress address, out int prefix)
    {
        int max = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            prefix = max;
            return true;
        }

        return int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out prefix) && prefix <= max;
    }
}
