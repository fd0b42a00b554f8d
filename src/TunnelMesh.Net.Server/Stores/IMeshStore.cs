using System.Net;

namespace TunnelMesh.Net.Server.Stores;

/// <summary>
/// Where the coordinator keeps auth keys and nodes. SQLite (<c>SqliteMeshStore</c>, one file,
/// the default) and PostgreSQL (<c>PostgresMeshStore</c>, for several replicas) implement it;
/// one test suite runs against both. Every method is atomic. Every change to a node (join, rename,
/// endpoints, online state, expiry, deletion) increments the mesh-wide map version in the same
/// transaction, and <see cref="WaitForChangeAsync"/> wakes on changes made by any replica.
/// </summary>
public interface IMeshStore : IAsyncDisposable
{
    /// <summary>Creates the schema if it does not exist (idempotent; safe with several replicas starting at once).</summary>
    Task InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>Stores a new auth key and returns it with its id.</summary>
    Task<AuthKeyRecord> CreateAuthKeyAsync(NewAuthKey key, CancellationToken cancellationToken = default);

    /// <summary>One auth key, or null.</summary>
    Task<AuthKeyRecord?> GetAuthKeyAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>All auth keys, by id.</summary>
    Task<IReadOnlyList<AuthKeyRecord>> ListAuthKeysAsync(CancellationToken cancellationToken = default);

    /// <summary>Revokes a key; false when there is no such key. Revoking twice keeps the first time.</summary>
    Task<bool> RevokeAuthKeyAsync(long id, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>
    /// Joins a node, atomically: checks the auth key (when <see cref="JoinCommand.AuthKeyId"/> is set:
    /// it exists, is not revoked, not expired, and a one-shot key is unused) and counts the use; then,
    /// when the public key is known, keeps that node's id and addresses (clearing an expiry, updating
    /// endpoints, token hash and, if the hostname changed, its name); otherwise allocates the lowest
    /// free IPv4 address of the prefix (never the network or broadcast address) and the IPv6 address
    /// derived from it, and a unique name (<see cref="NameRules"/>). Concurrent joins never share an address or a name.
    /// </summary>
    Task<JoinResult> JoinAsync(JoinCommand command, CancellationToken cancellationToken = default);

    /// <summary>A node by id, or null.</summary>
    Task<NodeRecord?> GetNodeAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>A node by its public key (base64), or null.</summary>
    Task<NodeRecord?> GetNodeByKeyAsync(string publicKey, CancellationToken cancellationToken = default);

    /// <summary>All nodes (expired ones too), by id.</summary>
    Task<IReadOnlyList<NodeRecord>> ListNodesAsync(CancellationToken cancellationToken = default);

    /// <summary>Renames a node; <see cref="RenameStatus.NameTaken"/> when another node has the name.</summary>
    Task<RenameStatus> RenameNodeAsync(long id, string name, CancellationToken cancellationToken = default);

    /// <summary>Deletes a node; false when there is none. Its address becomes free.</summary>
    Task<bool> DeleteNodeAsync(long id, CancellationToken cancellationToken = default);

    /// <summary>Marks a node expired (kept, left out of peer maps; a join with an auth key revives it); false when there is none.</summary>
    Task<bool> ExpireNodeAsync(long id, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Replaces a node's endpoints; false when there is none.</summary>
    Task<bool> UpdateEndpointsAsync(long id, IReadOnlyList<string> endpoints, CancellationToken cancellationToken = default);

    /// <summary>Sets whether a node holds a map stream now and stamps <see cref="NodeRecord.LastSeen"/>; false when there is none.</summary>
    Task<bool> SetOnlineAsync(long id, bool online, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Deletes ephemeral nodes offline since before <paramref name="offlineBefore"/>; returns how many.</summary>
    Task<int> DeleteEphemeralOfflineAsync(DateTimeOffset offlineBefore, CancellationToken cancellationToken = default);

    /// <summary>The current map version (0 for an empty store).</summary>
    Task<long> GetVersionAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Completes with the current version once it is greater than <paramref name="afterVersion"/>
    /// (at once if it already is), whichever replica made the change: within a second of it.
    /// </summary>
    Task<long> WaitForChangeAsync(long afterVersion, CancellationToken cancellationToken = default);
}

/// <summary>An auth key as stored: the SHA-256 of its secret, never the secret.</summary>
/// <param name="Id">Its id (part of the key text).</param>
/// <param name="SecretHash">SHA-256 of the secret part.</param>
/// <param name="Reusable">Usable for many joins.</param>
/// <param name="Ephemeral">Joining nodes are ephemeral.</param>
/// <param name="Tags">Tags given to joining nodes.</param>
/// <param name="Description">Free text.</param>
/// <param name="Created">Creation time.</param>
/// <param name="Expires">Expiry time.</param>
/// <param name="Revoked">Revocation time, if revoked.</param>
/// <param name="Uses">Successful joins.</param>
public sealed record AuthKeyRecord(
    long Id,
    byte[] SecretHash,
    bool Reusable,
    bool Ephemeral,
    IReadOnlyList<string> Tags,
    string? Description,
    DateTimeOffset Created,
    DateTimeOffset Expires,
    DateTimeOffset? Revoked,
    long Uses);

/// <summary>What <see cref="IMeshStore.CreateAuthKeyAsync"/> stores.</summary>
/// <param name="SecretHash">SHA-256 of the secret part.</param>
/// <param name="Reusable">Usable for many joins.</param>
/// <param name="Ephemeral">Joining nodes are ephemeral.</param>
/// <param name="Tags">Tags given to joining nodes.</param>
/// <param name="Description">Free text.</param>
/// <param name="Created">Creation time.</param>
/// <param name="Expires">Expiry time.</param>
public sealed record NewAuthKey(
    byte[] SecretHash,
    bool Reusable,
    bool Ephemeral,
    IReadOnlyList<string> Tags,
    string? Description,
    DateTimeOffset Created,
    DateTimeOffset Expires);

/// <summary>A node as stored.</summary>
/// <param name="Id">Its id (never reused).</param>
/// <param name="Name">Its unique name (a DNS label).</param>
/// <param name="PublicKey">Its WireGuard public key (base64).</param>
/// <param name="Address4">Its IPv4 mesh address.</param>
/// <param name="Address6">Its IPv6 mesh address.</param>
/// <param name="Endpoints">Its UDP endpoints as last reported.</param>
/// <param name="Tags">Tags from its auth key.</param>
/// <param name="Ephemeral">Removed after being offline for the ephemeral timeout.</param>
/// <param name="AuthKeyId">The auth key it last joined with (null after the key was deleted).</param>
/// <param name="TokenHash">SHA-256 of the node's bearer token.</param>
/// <param name="Created">When it first joined.</param>
/// <param name="LastSeen">When it last connected or disconnected.</param>
/// <param name="Online">Whether it holds a map stream now.</param>
/// <param name="Expired">When an administrator expired it, if one did.</param>
/// <param name="Version">The map version of its last change.</param>
public sealed record NodeRecord(
    long Id,
    string Name,
    string PublicKey,
    IPAddress Address4,
    IPAddress Address6,
    IReadOnlyList<string> Endpoints,
    IReadOnlyList<string> Tags,
    bool Ephemeral,
    long? AuthKeyId,
    byte[] TokenHash,
    DateTimeOffset Created,
    DateTimeOffset? LastSeen,
    bool Online,
    DateTimeOffset? Expired,
    long Version);

/// <summary>What <see cref="IMeshStore.JoinAsync"/> does.</summary>
/// <param name="AuthKeyId">The auth key used, or null for a re-join of a known node by its token (the caller checked it).</param>
/// <param name="PublicKey">The node's public key (base64).</param>
/// <param name="Hostname">The requested name, already normalised by <see cref="NameRules.Normalize"/>.</param>
/// <param name="Endpoints">Its endpoints.</param>
/// <param name="TokenHash">SHA-256 of the new node token.</param>
/// <param name="Now">The time of the join.</param>
/// <param name="Prefix4">The IPv4 mesh prefix to allocate from.</param>
/// <param name="Prefix6">The IPv6 mesh prefix (the node's IPv4 address goes in its last 32 bits).</param>
/// <param name="Ephemeral">The node asked to be ephemeral (an ephemeral auth key makes it so anyway).</param>
public sealed record JoinCommand(
    long? AuthKeyId,
    string PublicKey,
    string Hostname,
    IReadOnlyList<string> Endpoints,
    byte[] TokenHash,
    DateTimeOffset Now,
    IPNetwork Prefix4,
    IPNetwork Prefix6,
    bool Ephemeral = false);

/// <summary>The outcome of a join.</summary>
public enum JoinStatus
{
    /// <summary>A new node was created.</summary>
    Joined,

    /// <summary>A known node key joined again and kept its id and addresses.</summary>
    Rejoined,

    /// <summary>No auth key with that id.</summary>
    KeyNotFound,

    /// <summary>The auth key was revoked.</summary>
    KeyRevoked,

    /// <summary>The auth key has expired.</summary>
    KeyExpired,

    /// <summary>A one-shot key that was already used.</summary>
    KeyUsed,

    /// <summary>Every address of the prefix is taken.</summary>
    AddressesExhausted,

    /// <summary>A re-join without an auth key for a node key the store does not know.</summary>
    UnknownNode,
}

/// <summary>The result of a join: the node when the status is Joined or Rejoined.</summary>
/// <param name="Status">What happened.</param>
/// <param name="Node">The node, when it joined.</param>
public sealed record JoinResult(JoinStatus Status, NodeRecord? Node);

/// <summary>The outcome of a rename.</summary>
public enum RenameStatus
{
    /// <summary>Renamed (or already had that name).</summary>
    Renamed,

    /// <summary>No such node.</summary>
    NotFound,

    /// <summary>Another node has the name.</summary>
    NameTaken,
}
