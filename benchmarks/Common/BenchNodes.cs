using System.Net;

namespace TunnelMesh.Net.BenchCommon;

/// <summary>The options of one of two static nodes that are each other's only peer, as the end-to-end tools run them.</summary>
internal static class BenchNodes
{
    /// <summary>
    /// A node at <paramref name="address"/> whose one peer is <paramref name="peer"/> at <paramref name="peerAddress"/>
    /// (reached at <paramref name="endpoint"/> when given). Loopback UDP: the tools measure on this machine only.
    /// No DNS server: the tools dial addresses.
    /// </summary>
    public static MeshNodeOptions Options(NodePrivateKey key, IPAddress address, NodePublicKey peer, IPAddress peerAddress, IPEndPoint? endpoint)
    {
        var options = new MeshNodeOptions { PrivateKey = key, ListenAddress = IPAddress.Loopback, EnableDns = false };
        options.Addresses.Add(address);
        var p = new MeshPeerOptions { PublicKey = peer, Endpoint = endpoint };
        p.AllowedIPs.Add(new IPNetwork(peerAddress, 32));
        options.Peers.Add(p);
        return options;
    }
}
