using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Api;

/// <summary>The validated options in the form the API uses: parsed prefixes, the admin credential's hash.</summary>
internal sealed class CoordinatorSettings
{
    private readonly byte[] _adminHash;

    public CoordinatorSettings(IOptions<MeshCoordinatorOptions> options)
    {
        MeshCoordinatorOptions o = options.Value;
        Options = o;
        Prefix4 = IPNetwork.Parse(o.Prefix4);
        Prefix6 = IPNetwork.Parse(o.Prefix6);
        DnsSuffix = o.DnsSuffix;
        Mesh = new MeshInfo(Prefix4.ToString(), Prefix6.ToString(), DnsSuffix, [.. o.StunEndpoints]);
        _adminHash = SHA256.HashData(Encoding.UTF8.GetBytes(o.AdminCredential ?? ""));
    }

    public MeshCoordinatorOptions Options { get; }

    public IPNetwork Prefix4 { get; }

    public IPNetwork Prefix6 { get; }

    public string DnsSuffix { get; }

    public MeshInfo Mesh { get; }

    /// <summary>Whether <paramref name="credential"/> is the admin credential (hashes compared in constant time).</summary>
    public bool IsAdminCredential(string? credential) =>
        credential is { Length: > 0 and <= 1024 }
        && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(credential)), _adminHash);

    /// <summary>A stored node as the API publishes it.</summary>
    public MeshNodeInfo ToInfo(NodeRecord n) => new(
        n.Id,
        n.Name,
        n.Name + "." + DnsSuffix,
        n.PublicKey,
        [n.Address4.ToString(), n.Address6.ToString()],
        n.Endpoints,
        n.Tags,
        n.Ephemeral,
        n.Online,
        n.LastSeen,
        n.Created,
        n.Expired is not null);

    /// <summary>A stored auth key as listed (no secret).</summary>
    public static AuthKeyInfo ToInfo(AuthKeyRecord k) => new(
        k.Id,
        BearerSecret.Format(BearerSecret.AuthKeyKind, k.Id, "…"),
        k.Reusable,
        k.Ephemeral,
        k.Tags,
        k.Description,
        k.Created,
        k.Expires,
        k.Revoked,
        k.Uses);

    /// <summary>A snapshot of every node but <paramref name="selfId"/>, expired ones left out.</summary>
    public PeerMapMessage Snapshot(long version, IReadOnlyList<NodeRecord> nodes, long selfId)
    {
        var peers = new List<MeshNodeInfo>(nodes.Count);
        foreach (NodeRecord n in nodes)
        {
            if (n.Id != selfId && n.Expired is null)
            {
                peers.Add(ToInfo(n));
            }
        }

        return new PeerMapMessage(PeerMapMessageType.Snapshot, version, Peers: peers);
    }
}
