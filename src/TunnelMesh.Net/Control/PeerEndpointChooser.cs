using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Control;

/// <summary>
/// The one place that decides which of a peer's published endpoints WireGuard sends to first, and
/// which of this node's own endpoints it publishes. (Relay paths and probing come on top of this.)
/// </summary>
internal static class PeerEndpointChooser
{
    /// <summary>Most endpoints a node publishes (the coordinator's limit).</summary>
    public const int MaxPublished = 16;

    /// <summary>
    /// The first endpoint in the peer's list that parses as <c>ip:port</c> with a port and a
    /// specific (not unspecified, not multicast) address; none when no entry does.
    /// </summary>
    public static Endpoint Choose(IReadOnlyList<string>? endpoints)
    {
        var candidates = Candidates(endpoints);
        return candidates.Count > 0 ? candidates[0] : default;
    }

    /// <summary>
    /// Every usable endpoint of the peer's list, in its order, without repeats and at most
    /// <see cref="MaxPublished"/>: the direct paths to probe (its interface addresses, its STUN
    /// reflexive addresses). Entries that do not parse, have no port, or name an unspecified or
    /// multicast address are skipped.
    /// </summary>
    public static IReadOnlyList<Endpoint> Candidates(IReadOnlyList<string>? endpoints)
    {
        if (endpoints is null || endpoints.Count == 0)
        {
            return [];
        }

        var candidates = new List<Endpoint>(Math.Min(endpoints.Count, MaxPublished));
        foreach (string text in endpoints)
        {
            if (IPEndPoint.TryParse(text, out var ip) && ip.Port > 0
                && !ip.Address.Equals(IPAddress.Any) && !ip.Address.Equals(IPAddress.IPv6Any)
                && !IsMulticast(ip.Address))
            {
                var endpoint = Endpoint.FromIPEndPoint(ip);
                if (!candidates.Contains(endpoint))
                {
                    candidates.Add(endpoint);
                    if (candidates.Count == MaxPublished)
                    {
                        break;
                    }
                }
            }
        }

        return candidates;
    }

    /// <summary>
    /// This node's UDP endpoints as it knows them locally: the bind address when it is specific
    /// (a node bound to loopback publishes only loopback), otherwise the unicast addresses of the
    /// interfaces that are up, IPv4 first, without loopback and IPv6 link-local addresses (a peer
    /// elsewhere could not use them).
    /// </summary>
    public static IReadOnlyList<string> Local(IPAddress bindAddress, int port)
    {
        if (!bindAddress.Equals(IPAddress.Any) && !bindAddress.Equals(IPAddress.IPv6Any))
        {
            return [new IPEndPoint(bindAddress.IsIPv4MappedToIPv6 ? bindAddress.MapToIPv4() : bindAddress, port).ToString()];
        }

        bool ipv6 = bindAddress.AddressFamily == AddressFamily.InterNetworkV6;
        var v4 = new List<string>();
        var v6 = new List<string>();
        NetworkInterface[] interfaces;
        try
        {
            interfaces = NetworkInterface.GetAllNetworkInterfaces();
        }
        catch (NetworkInformationException)
        {
            return [];
        }

        foreach (var nic in interfaces)
        {
            if (nic.OperationalStatus is not (OperationalStatus.Up or OperationalStatus.Unknown) || nic.NetworkInterfaceType == NetworkInterfaceType.Loopback)
            {
                continue;
            }

            foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
            {
                var address = unicast.Address;
                if (IPAddress.IsLoopback(address))
                {
                    continue;
                }

                if (address.AddressFamily == AddressFamily.InterNetwork)
                {
                    v4.Add(new IPEndPoint(address, port).ToString());
                }
                else if (ipv6 && address.AddressFamily == AddressFamily.InterNetworkV6 && !address.IsIPv6LinkLocal && !address.IsIPv6Multicast)
                {
                    v6.Add(new IPEndPoint(address, port).ToString());
                }
            }
        }

        v4.AddRange(v6);
        return v4.Count > MaxPublished ? v4.GetRange(0, MaxPublished) : v4;
    }

    private static bool IsMulticast(IPAddress address) => address.AddressFamily == AddressFamily.InterNetworkV6
        ? address.IsIPv6Multicast
        : (address.GetAddressBytes()[0] & 0xF0) == 0xE0;
}
