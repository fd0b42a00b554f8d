using System.Net;
using System.Net.Sockets;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net;

/// <summary>Checks <see cref="MeshNodeOptions"/> at start and turns them into what the layers use.</summary>
internal static class MeshNodeConfigValidator
{
    public const int MinMtu = 576;
    public const int MaxMtu = 65535 - 60; // an IPv6/UDP/WireGuard-framed datagram must still fit

    /// <summary>The options of a node in static mode, or of one in control mode (key and address then come later).</summary>
    internal sealed record ValidatedConfig(NodePrivateKey? PrivateKey, IPAddress? Ipv4Address, int Mtu, IReadOnlyList<PeerConfig> Peers, ControlConfig? Control);

    /// <summary>The control-mode options.</summary>
    internal sealed record ControlConfig(Uri Url, string? AuthKey, string Hostname, string? StateDirectory, bool Ephemeral);

    public static async Task<ValidatedConfig> ValidateAsync(MeshNodeOptions options, CancellationToken cancellationToken)
    {
        const string O = nameof(MeshNodeOptions);
        var control = ValidateControl(options);
        var privateKey = options.PrivateKey;
        if (privateKey is null && control is null)
        {
            throw new MeshConfigurationException($"{O}.{nameof(options.PrivateKey)}", "is required (generate one with NodePrivateKey.Generate() or 'wg genkey'), unless ControlUrl is set.");
        }
        if (options.ListenPort is < 0 or > 65535)
        {
            throw new MeshConfigurationException($"{O}.{nameof(options.ListenPort)}", $"{options.ListenPort} is not a port number (0-65535; 0 picks one).");
        }

        if (options.ListenAddress is null)
        {
            throw new MeshConfigurationException($"{O}.{nameof(options.ListenAddress)}", "is required.");
        }

        if (options.Mtu is < MinMtu or > MaxMtu)
        {
            throw new MeshConfigurationException($"{O}.{nameof(options.Mtu)}", $"{options.Mtu} is outside {MinMtu}-{MaxMtu}.");
        }

        if (options.RelayUrl is { } relay)
        {
            if (!relay.IsAbsoluteUri || relay.Scheme is not ("ws" or "wss" or "http" or "https"))
            {
                throw new MeshConfigurationException($"{O}.{nameof(options.RelayUrl)}", $"'{relay}' is not an absolute ws, wss, http or https URL.");
            }

            if (string.IsNullOrEmpty(options.RelayToken))
            {
                throw new MeshConfigurationException($"{O}.{nameof(options.RelayToken)}", "is required with a relay URL.");
            }
        }

        IPAddress? ipv4 = null;
        if (control is not null)
        {
            if (options.Addresses.Count != 0)
            {
                throw new MeshConfigurationException($"{O}.{nameof(options.Addresses)}", "must be empty when ControlUrl is set: the coordinator assigns the node's addresses.");
            }
        }
        else
        {
            ipv4 = options.Addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                ?? throw new MeshConfigurationException($"{O}.{nameof(options.Addresses)}", "needs an IPv4 address (the node's address inside the mesh).");
        }

        var peers = new List<PeerConfig>();
        var seen = new HashSet<NodePublicKey>();
        for (int i = 0; i < options.Peers.Count; i++)
        {
            var p = options.Peers[i];
            string name = $"{O}.{nameof(options.Peers)}[{i}]";
            if (p is null)
            {
                throw new MeshConfigurationException(name, "is null.");
            }

            if (!p.PublicKey.IsSet)
            {
                throw new MeshConfigurationException($"{name}.{nameof(p.PublicKey)}", "is required.");
            }

            if (privateKey is not null && p.PublicKey == privateKey.PublicKey)
            {
                throw new MeshConfigurationException($"{name}.{nameof(p.PublicKey)}", "is this node's own key.");
            }

            if (!seen.Add(p.PublicKey))
            {
                throw new MeshConfigurationException($"{name}.{nameof(p.PublicKey)}", $"{p.PublicKey} appears twice.");
            }

            byte[] psk = new byte[32];
            if (p.PresharedKey is not null && !KeyText.TryDecode(p.PresharedKey, psk))
            {
                throw new MeshConfigurationException($"{name}.{nameof(p.PresharedKey)}", "is not a base64 32-byte key (as 'wg genpsk' prints).");
            }

            if (p.PersistentKeepalive is { } keepalive && (keepalive < TimeSpan.FromSeconds(1) || keepalive > TimeSpan.FromSeconds(65535)))
            {
                throw new MeshConfigurationException($"{name}.{nameof(p.PersistentKeepalive)}", $"{keepalive} is outside 1 s to 65535 s.");
            }

            var endpoint = default(Endpoint);
            if (p.Endpoint is not null)
            {
                endpoint = await ResolveAsync(p.Endpoint, $"{name}.{nameof(p.Endpoint)}", cancellationToken).ConfigureAwait(false);
            }

            peers.Add(new PeerConfig(p.PublicKey, psk, endpoint, p.AllowedIPs.ToArray(), p.PersistentKeepalive));
        }

        return new ValidatedConfig(privateKey, ipv4, options.Mtu, peers, control);
    }

    /// <summary>Checks the control-mode options; null in static mode (when no control option is set).</summary>
    private static ControlConfig? ValidateControl(MeshNodeOptions options)
    {
        const string O = nameof(MeshNodeOptions);
        if (options.ControlUrl is not { } url)
        {
            string? stray = options.AuthKey is not null ? nameof(options.AuthKey)
                : options.StateDirectory is not null ? nameof(options.StateDirectory)
                : options.Hostname is not null ? nameof(options.Hostname)
                : null;
            if (stray is not null)
            {
                throw new MeshConfigurationException($"{O}.{nameof(options.ControlUrl)}", $"is required when {stray} is set (they configure the coordinator's join).");
            }

            return null;
        }

        if (!url.IsAbsoluteUri || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            throw new MeshConfigurationException($"{O}.{nameof(options.ControlUrl)}", $"'{url}' is not an absolute http or https URL.");
        }

        if (!string.IsNullOrEmpty(url.Query) || !string.IsNullOrEmpty(url.Fragment))
        {
            throw new MeshConfigurationException($"{O}.{nameof(options.ControlUrl)}", "must not have a query or fragment (the API paths are appended to it).");
        }

        if (options.AuthKey is { } key && (key.Length == 0 || key.Any(char.IsWhiteSpace)))
        {
            throw new MeshConfigurationException($"{O}.{nameof(options.AuthKey)}", "is empty or contains white space.");
        }

        string hostname = options.Hostname ?? Environment.MachineName;
        if (string.IsNullOrWhiteSpace(hostname) || hostname.Length > 253 || hostname.Any(char.IsControl))
        {
            throw new MeshConfigurationException($"{O}.{nameof(options.Hostname)}", "must be a host name of 1-253 printable characters.");
        }

        if (options.StateDirectory is { } dir && (dir.Length == 0 || dir.IndexOfAny(Path.GetInvalidPathChars()) >= 0))
        {
            throw new MeshConfigurationException($"{O}.{nameof(options.StateDirectory)}", $"'{dir}' is not a directory path.");
        }

        // A node that keeps no identity (no state directory, no fixed key) is a new node on every start:
        // its old entry could never be used again, so it is ephemeral (removed once offline) by default.
        bool ephemeral = options.Ephemeral || (options.StateDirectory is null && options.PrivateKey is null);
        return new ControlConfig(url, options.AuthKey, hostname.Trim(), options.StateDirectory, ephemeral);
    }

    /// <summary>An IP endpoint as is, a DNS endpoint resolved (IPv4 first); a failure names <paramref name="option"/>.</summary>
    internal static async Task<Endpoint> ResolveAsync(EndPoint endPoint, string option, CancellationToken cancellationToken)
    {
        switch (endPoint)
        {
            case IPEndPoint ip when ip.Port is > 0 and <= 65535:
                return Endpoint.FromIPEndPoint(ip);
            case DnsEndPoint dns when dns.Port is > 0 and <= 65535:
                IPAddress[] addresses;
                try
                {
                    addresses = await System.Net.Dns.GetHostAddressesAsync(dns.Host, cancellationToken).ConfigureAwait(false);
                }
                catch (SocketException ex)
                {
                    throw new MeshConfigurationException(option, $"'{dns.Host}' could not be resolved: {ex.Message}");
                }

                var address = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
                    ?? throw new MeshConfigurationException(option, $"'{dns.Host}' has no address.");
                return Endpoint.FromIPEndPoint(new IPEndPoint(address, dns.Port));
            default:
                throw new MeshConfigurationException(option, $"'{endPoint}' is not an IP or DNS endpoint with a port 1-65535.");
        }
    }
}
