using System.Text.Json.Serialization;

namespace TunnelMesh.Net.Control;

// The coordinator's JSON API under /api/v1 (docs/CONTROL-API.md). Both sides use these records:
// the coordinator (TunnelMesh.Net.Server) serializes them and the node's control client reads them.
// Keys are WireGuard base64 (44 characters); addresses are IP literals; endpoints are "ip:port"
// ("[v6]:port" for IPv6); times are UTC ISO 8601. JSON names are camelCase.

/// <summary>POST /api/v1/join: a node joins (or re-joins) the mesh with an auth key.</summary>
/// <param name="AuthKey">The auth key as created (<c>tmkey-…</c>); required unless <paramref name="NodeToken"/> is given.</param>
/// <param name="NodeKey">The node's WireGuard public key (base64).</param>
/// <param name="Hostname">The name the node asks for (DNS label rules; clashes get a suffix, see docs).</param>
/// <param name="Endpoints">Where the node can be reached over UDP, as it knows them (may be empty).</param>
/// <param name="NodeToken">A token from an earlier join: re-joins the same node key without an auth key.</param>
/// <param name="Ephemeral">The node asks to be ephemeral (removed after the ephemeral timeout offline); an ephemeral auth key makes it so regardless.</param>
public sealed record JoinRequest(
    string? AuthKey,
    string NodeKey,
    string Hostname,
    IReadOnlyList<string>? Endpoints = null,
    string? NodeToken = null,
    bool Ephemeral = false);

/// <summary>The answer to a join.</summary>
/// <param name="Self">The node as the coordinator records it: its addresses and name.</param>
/// <param name="NodeToken">The node's bearer token for the map stream, endpoint updates and the relay (<c>tmnode-…</c>); keep it secret.</param>
/// <param name="Mesh">The mesh's prefixes and DNS suffix.</param>
/// <param name="Map">Every other node now (a snapshot).</param>
public sealed record JoinResponse(MeshNodeInfo Self, string NodeToken, MeshInfo Mesh, PeerMapMessage Map);

/// <summary>The mesh-wide settings a node needs.</summary>
/// <param name="Prefix4">The IPv4 mesh prefix (default 100.64.0.0/10).</param>
/// <param name="Prefix6">The IPv6 ULA mesh prefix.</param>
/// <param name="DnsSuffix">The DNS suffix of mesh names (default <c>tunnelmesh</c>).</param>
/// <param name="StunEndpoints">Where the coordinator answers STUN binding requests ("host:port"; empty when off).</param>
public sealed record MeshInfo(string Prefix4, string Prefix6, string DnsSuffix, IReadOnlyList<string> StunEndpoints);

/// <summary>A node as the coordinator publishes it.</summary>
/// <param name="Id">The coordinator's id for the node.</param>
/// <param name="Name">Its unique host name within the mesh (a DNS label).</param>
/// <param name="Fqdn">Name + "." + the DNS suffix.</param>
/// <param name="PublicKey">Its WireGuard public key (base64).</param>
/// <param name="Addresses">Its mesh addresses: the IPv4 one first, then the IPv6 one.</param>
/// <param name="Endpoints">Its UDP endpoints as last reported (local and reflexive).</param>
/// <param name="Tags">Tags from the auth key it joined with.</param>
/// <param name="Ephemeral">Removed after it has been offline for the ephemeral timeout.</param>
/// <param name="Online">Whether it holds a map stream to a coordinator now.</param>
/// <param name="LastSeen">When it was last connected.</param>
/// <param name="Created">When it first joined.</param>
/// <param name="Expired">Whether an administrator expired it (peers drop it; it must re-join with an auth key).</param>
public sealed record MeshNodeInfo(
    long Id,
    string Name,
    string Fqdn,
    string PublicKey,
    IReadOnlyList<string> Addresses,
    IReadOnlyList<string> Endpoints,
    IReadOnlyList<string> Tags,
    bool Ephemeral,
    bool Online,
    DateTimeOffset? LastSeen,
    DateTimeOffset Created,
    bool Expired);

/// <summary>
/// One message of the peer map: on the WebSocket at GET /api/v1/map (one JSON text message each),
/// first a <see cref="PeerMapMessageType.Snapshot"/> of every other node, then
/// <see cref="PeerMapMessageType.Delta"/>s. Versions only grow; a node that reconnects gets a new snapshot.
/// </summary>
/// <param name="Type">Snapshot or delta.</param>
/// <param name="Version">The map version this message brings the receiver to.</param>
/// <param name="Peers">Snapshot: every other node (expired nodes left out).</param>
/// <param name="Upserted">Delta: nodes added or changed.</param>
/// <param name="Removed">Delta: public keys of nodes removed (deleted, expired).</param>
public sealed record PeerMapMessage(
    PeerMapMessageType Type,
    long Version,
    IReadOnlyList<MeshNodeInfo>? Peers = null,
    IReadOnlyList<MeshNodeInfo>? Upserted = null,
    IReadOnlyList<string>? Removed = null);

/// <summary>The kind of a <see cref="PeerMapMessage"/>.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<PeerMapMessageType>))]
public enum PeerMapMessageType
{
    /// <summary>The whole map.</summary>
    Snapshot,

    /// <summary>Changes since the previous message.</summary>
    Delta,
}

/// <summary>PUT /api/v1/nodes/self/endpoints (node token): the node's current UDP endpoints.</summary>
/// <param name="Endpoints">"ip:port" strings, at most 16.</param>
public sealed record EndpointUpdate(IReadOnlyList<string> Endpoints);

/// <summary>POST /api/v1/authkeys (admin): create an auth key.</summary>
/// <param name="Reusable">Usable for any number of joins until it expires or is revoked; otherwise one join.</param>
/// <param name="Ephemeral">Nodes joining with it are ephemeral.</param>
/// <param name="ExpiresInSeconds">Lifetime; null for the coordinator's default (24 h).</param>
/// <param name="Tags">Tags given to nodes joining with it (each <c>tag:name</c>).</param>
/// <param name="Description">Free text for administrators.</param>
public sealed record CreateAuthKeyRequest(
    bool Reusable = false,
    bool Ephemeral = false,
    long? ExpiresInSeconds = null,
    IReadOnlyList<string>? Tags = null,
    string? Description = null);

/// <summary>An auth key as listed (never the secret).</summary>
/// <param name="Id">Its id.</param>
/// <param name="Prefix">The start of the key, enough to recognise it (<c>tmkey-12-ab…</c>).</param>
/// <param name="Reusable">Reusable or one-shot.</param>
/// <param name="Ephemeral">Joins make ephemeral nodes.</param>
/// <param name="Tags">Tags given to joining nodes.</param>
/// <param name="Description">Free text.</param>
/// <param name="Created">When it was created.</param>
/// <param name="Expires">When it stops working.</param>
/// <param name="Revoked">When it was revoked, if it was.</param>
/// <param name="Uses">Successful joins with it.</param>
public sealed record AuthKeyInfo(
    long Id,
    string Prefix,
    bool Reusable,
    bool Ephemeral,
    IReadOnlyList<string> Tags,
    string? Description,
    DateTimeOffset Created,
    DateTimeOffset Expires,
    DateTimeOffset? Revoked,
    long Uses);

/// <summary>The answer to creating an auth key: the only time the whole key is shown.</summary>
/// <param name="Key">The key (<c>tmkey-&lt;id&gt;-&lt;secret&gt;</c>).</param>
/// <param name="Info">Its listing.</param>
public sealed record CreatedAuthKey(string Key, AuthKeyInfo Info);

/// <summary>PATCH /api/v1/nodes/{id} (admin): rename a node.</summary>
/// <param name="Name">The new name (DNS label rules; must be free).</param>
public sealed record RenameNodeRequest(string Name);

/// <summary>GET /api/v1/health.</summary>
/// <param name="Status"><c>ok</c> when the store answers.</param>
/// <param name="Version">The current map version.</param>
/// <param name="Nodes">Nodes known.</param>
public sealed record HealthResponse(string Status, long Version, int Nodes);
