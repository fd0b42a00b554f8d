using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server;

/// <summary>
/// Options of the coordinator (<c>services.AddMeshCoordinator(o => …)</c>). Validated when the host
/// starts; a bad value stops the start with a message that names the option
/// (<c>MeshCoordinatorOptions.Prefix4: …</c>).
/// </summary>
public sealed class MeshCoordinatorOptions
{
    /// <summary>The IPv4 mesh prefix nodes get their addresses from.</summary>
    /// <remarks>Default <c>100.64.0.0/10</c> (shared address space; no clash with home LANs or Docker). At most /30.</remarks>
    public string Prefix4 { get; set; } = "100.64.0.0/10";

    /// <summary>The IPv6 (ULA) mesh prefix; a node's IPv6 address is the prefix with its IPv4 address in the last 32 bits.</summary>
    /// <remarks>Default <c>fd74:6d65:7368::/48</c>. At most /96.</remarks>
    public string Prefix6 { get; set; } = "fd74:6d65:7368::/48";

    /// <summary>The DNS suffix of mesh names (<c>name.suffix</c>).</summary>
    /// <remarks>Default <c>tunnelmesh</c>. One or more DNS labels separated by dots.</remarks>
    public string DnsSuffix { get; set; } = "tunnelmesh";

    /// <summary>The SQLite database file of the default store.</summary>
    /// <remarks>Default <c>tunnelmesh.db</c> (relative to the working directory). Ignored when
    /// <see cref="StoreFactory"/> or <see cref="PostgresConnectionString"/> is set.</remarks>
    public string SqlitePath { get; set; } = "tunnelmesh.db";

    /// <summary>A PostgreSQL connection string: use the PostgreSQL store (several coordinator replicas share it).</summary>
    /// <remarks>Default null (SQLite). Ignored when <see cref="StoreFactory"/> is set.</remarks>
    public string? PostgresConnectionString { get; set; }

    /// <summary>Builds the store; wins over <see cref="PostgresConnectionString"/> and <see cref="SqlitePath"/>.</summary>
    /// <remarks>Default null. The coordinator owns the store it builds and disposes it with the service provider.</remarks>
    public Func<IServiceProvider, IMeshStore>? StoreFactory { get; set; }

    /// <summary>The administrator's bearer credential for the admin endpoints (auth keys, nodes).</summary>
    /// <remarks>Required; at least <see cref="MinAdminCredentialLength"/> characters. Kept only as a hash once the coordinator runs.</remarks>
    public string? AdminCredential { get; set; }

    /// <summary>The lifetime of an auth key created without one.</summary>
    /// <remarks>Default 24 hours.</remarks>
    public TimeSpan DefaultAuthKeyLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How long an ephemeral node may be offline before it is removed.</summary>
    /// <remarks>Default 10 minutes. The sweep runs every quarter of it, but at least once a minute and at most once a second.</remarks>
    public TimeSpan EphemeralTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Joins allowed per client IP address per minute; more are answered 429.</summary>
    /// <remarks>Default 60.</remarks>
    public int JoinPermitsPerMinute { get; set; } = 60;

    /// <summary>The largest request body accepted; larger ones are answered 413.</summary>
    /// <remarks>Default 64 KiB.</remarks>
    public long MaxRequestBodyBytes { get; set; } = 64 * 1024;

    /// <summary>The most nodes the mesh holds; a join of a new node beyond it is answered 409.</summary>
    /// <remarks>Default 100,000. Checked against the peer map as last seen (up to a second old), so
    /// concurrent joins may pass it by a few.</remarks>
    public int MaxNodes { get; set; } = 100_000;

    /// <summary>STUN endpoints advertised to nodes in <c>MeshInfo</c> (<c>host:port</c>).</summary>
    /// <remarks>Default empty (no STUN).</remarks>
    public IList<string> StunEndpoints { get; } = new List<string>();

    /// <summary>How often a map stream is pinged; a node that does not answer within two intervals is dropped and marked offline.</summary>
    /// <remarks>Default 30 seconds.</remarks>
    public TimeSpan MapKeepAliveInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The URL other coordinator replicas reach this one at (<c>http://10.0.0.2:8080</c>; the replica
    /// link is <c>{ReplicaUrl}/api/v1/relay/replica</c>). Set it, with <see cref="ClusterSecret"/>, on
    /// every replica that shares one PostgreSQL store, so a node attached to one replica's relay reaches
    /// a node attached to another's: the replicas forward relay frames to each other (docs/RELAY.md).
    /// </summary>
    /// <remarks>Default null: one replica; a relay frame to a node attached elsewhere is dropped.
    /// An absolute http, https, ws or wss URL; needs <see cref="ClusterSecret"/> and the PostgreSQL store.</remarks>
    public string? ReplicaUrl { get; set; }

    /// <summary>The secret replicas present to each other's replica-link endpoint (the same on every replica).</summary>
    /// <remarks>Default null. Required with <see cref="ReplicaUrl"/>; at least <see cref="MinClusterSecretLength"/>
    /// characters, no white space. Kept only as a hash for comparisons (constant time); never logged.</remarks>
    public string? ClusterSecret { get; set; }

    /// <summary>How often a replica refreshes its registration in the store and re-reads the others; a replica silent for three intervals counts as gone.</summary>
    /// <remarks>Default 5 seconds. 1 second to 5 minutes.</remarks>
    public TimeSpan ReplicaHeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Frames waiting to go out on the link to one other replica; when full, more frames to it are dropped and counted.</summary>
    /// <remarks>Default 4096. Range 1 to 65536.</remarks>
    public int ReplicaLinkQueueCapacity { get; set; } = 4096;

    /// <summary>The shortest <see cref="ClusterSecret"/> accepted.</summary>
    public const int MinClusterSecretLength = 32;

    /// <summary>The shortest <see cref="AdminCredential"/> accepted.</summary>
    public const int MinAdminCredentialLength = 16;
}
