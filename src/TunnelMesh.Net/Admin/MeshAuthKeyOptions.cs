namespace TunnelMesh.Net.Admin;

/// <summary>
/// What kind of auth key <see cref="MeshAdminClient.CreateAuthKeyAsync"/> creates. The defaults make
/// a one-shot, non-ephemeral key without tags that lives for the coordinator's default lifetime (24 h).
/// </summary>
/// <example>
/// A key a customer's machine joins with once; the machine is removed after it has been offline for
/// the coordinator's ephemeral timeout, and it carries a tag services can authorise by:
/// <code>
/// var key = await admin.CreateAuthKeyAsync(new MeshAuthKeyOptions
/// {
///     Ephemeral = true,
///     ExpiresIn = TimeSpan.FromHours(1),
///     Tags = ["tag:customer-42"],
///     Description = "customer 42, homelab",
/// }, ct);
/// </code>
/// </example>
public sealed record MeshAuthKeyOptions
{
    /// <summary>Usable for any number of joins until it expires or is revoked. Default <c>false</c>: one join (one-shot).</summary>
    public bool Reusable { get; init; }

    /// <summary>Nodes joining with it are ephemeral: removed after being offline for the coordinator's <c>EphemeralTimeout</c> (10 min by default). Default <c>false</c>.</summary>
    public bool Ephemeral { get; init; }

    /// <summary>How long the key works; rounded up to whole seconds, at least 1 s and at most 10 years. Default null: the coordinator's <c>DefaultAuthKeyLifetime</c> (24 h).</summary>
    public TimeSpan? ExpiresIn { get; init; }

    /// <summary>Tags given to every node that joins with the key, each <c>tag:&lt;label&gt;</c> (a lowercase DNS label), at most 32. Peers see them in <see cref="MeshNode.WhoIs(MeshTcpStream)"/>. Default: none.</summary>
    public IReadOnlyList<string>? Tags { get; init; }

    /// <summary>Free text for administrators (at most 1024 characters), shown when keys are listed. Default: none.</summary>
    public string? Description { get; init; }
}
