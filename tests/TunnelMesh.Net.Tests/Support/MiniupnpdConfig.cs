namespace TunnelMesh.Net.Tests.Support;

/// <summary>
/// The configuration file of a miniupnpd (nftables build) a test runs in a router namespace: WAN
/// <c>wan0</c>, LAN <c>lan0</c> (198.51.100.0/24 may map), its own nftables table, and STUN against a
/// server the test runs on the WAN side. miniupnpd refuses to map while its WAN address is reserved,
/// as every TEST-NET range is, unless STUN shows the WAN unfiltered.
/// </summary>
public static class MiniupnpdConfig
{
    /// <summary>Writes the file to <paramref name="path"/>; leases go beside it.</summary>
    public static Task WriteAsync(string path, string stunHost, string table, bool natPmp = true, bool upnp = false) =>
        File.WriteAllTextAsync(path, $"""
            ext_ifname=wan0
            listening_ip=lan0
            ext_perform_stun=yes
            ext_stun_host={stunHost}
            ext_stun_port=3478
            enable_natpmp={(natPmp ? "yes" : "no")}
            enable_upnp={(upnp ? "yes" : "no")}
            http_port=0
            uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07a
            ipv6_disable=yes
            secure_mode=yes
            lease_file={Path.Combine(Path.GetDirectoryName(path)!, "leases")}
            upnp_table_name={table}
            upnp_nat_table_name={table}
            upnp_forward_chain=miniupnpd
            upnp_nat_chain=prerouting_miniupnpd
            upnp_nat_postrouting_chain=postrouting_miniupnpd
            allow 1024-65535 198.51.100.0/24 1024-65535
            deny 0-65535 0.0.0.0/0 0-65535
            """);
}
