using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server;

/// <summary>Checks <see cref="MeshCoordinatorOptions"/> at start; each failure names the option.</summary>
internal sealed class MeshCoordinatorOptionsValidator : IValidateOptions<MeshCoordinatorOptions>
{
    private const string P = nameof(MeshCoordinatorOptions) + ".";

    public ValidateOptionsResult Validate(string? name, MeshCoordinatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();

        if (!TryParsePrefix(options.Prefix4, out IPNetwork p4) || p4.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
        {
            failures.Add($"{P}{nameof(options.Prefix4)}: '{options.Prefix4}' is not an IPv4 prefix such as 100.64.0.0/10 (host bits must be zero).");
        }
        else if (NameRules.UsableCount(p4) < 1)
        {
            failures.Add($"{P}{nameof(options.Prefix4)}: /{p4.PrefixLength} leaves no address for nodes (at most /30).");
        }

        if (!TryParsePrefix(options.Prefix6, out IPNetwork p6) || p6.BaseAddress.AddressFamily != AddressFamily.InterNetworkV6)
        {
            failures.Add($"{P}{nameof(options.Prefix6)}: '{options.Prefix6}' is not an IPv6 prefix such as fd74:6d65:7368::/48 (host bits must be zero).");
        }
        else if (p6.PrefixLength > 96)
        {
            failures.Add($"{P}{nameof(options.Prefix6)}: /{p6.PrefixLength} is too long; the IPv4 address needs the last 32 bits (at most /96).");
        }

        if (!IsDnsSuffix(options.DnsSuffix))
        {
            failures.Add($"{P}{nameof(options.DnsSuffix)}: '{options.DnsSuffix}' is not a DNS suffix (lowercase labels of letters, digits and hyphens, separated by dots).");
        }

        if (options.StoreFactory is null && options.PostgresConnectionString is null && string.IsNullOrWhiteSpace(options.SqlitePath))
        {
            failures.Add($"{P}{nameof(options.SqlitePath)}: empty, and neither {nameof(options.StoreFactory)} nor {nameof(options.PostgresConnectionString)} is set.");
        }

        if (options.PostgresConnectionString is { } pg && string.IsNullOrWhiteSpace(pg))
        {
            failures.Add($"{P}{nameof(options.PostgresConnectionString)}: empty (leave it null for SQLite).");
        }

        if (string.IsNullOrEmpty(options.AdminCredential))
        {
            failures.Add($"{P}{nameof(options.AdminCredential)}: required (the admin endpoints need it).");
        }
        else if (options.AdminCredential.Length < MeshCoordinatorOptions.MinAdminCredentialLength)
        {
            failures.Add($"{P}{nameof(options.AdminCredential)}: too short ({options.AdminCredential.Length} characters; at least {MeshCoordinatorOptions.MinAdminCredentialLength}).");
        }
        else if (options.AdminCredential.Any(char.IsWhiteSpace))
        {
            failures.Add($"{P}{nameof(options.AdminCredential)}: must not contain white space.");
        }

        CheckPositive(failures, nameof(options.DefaultAuthKeyLifetime), options.DefaultAuthKeyLifetime);
        CheckPositive(failures, nameof(options.EphemeralTimeout), options.EphemeralTimeout);
        CheckPositive(failures, nameof(options.MapKeepAliveInterval), options.MapKeepAliveInterval);

        if (options.JoinPermitsPerMinute < 1)
        {
            failures.Add($"{P}{nameof(options.JoinPermitsPerMinute)}: {options.JoinPermitsPerMinute} must be at least 1.");
        }

        if (options.MaxRequestBodyBytes < 1024)
        {
            failures.Add($"{P}{nameof(options.MaxRequestBodyBytes)}: {options.MaxRequestBodyBytes} must be at least 1024.");
        }

        if (options.MaxNodes < 1)
        {
            failures.Add($"{P}{nameof(options.MaxNodes)}: {options.MaxNodes} must be at least 1.");
        }

        ValidateReplica(failures, options);

        foreach (string s in options.StunEndpoints)
        {
            if (!IsHostPort(s))
            {
                failures.Add($"{P}{nameof(options.StunEndpoints)}: '{s}' is not host:port.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void ValidateReplica(List<string> failures, MeshCoordinatorOptions options)
    {
        if (options.ReplicaUrl is { } url)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? parsed) || parsed.Scheme is not ("http" or "https" or "ws" or "wss") || !string.IsNullOrEmpty(parsed.Query))
            {
                failures.Add($"{P}{nameof(options.ReplicaUrl)}: '{url}' is not an absolute http, https, ws or wss URL without a query.");
            }

            if (options.ClusterSecret is null)
            {
                failures.Add($"{P}{nameof(options.ReplicaUrl)}: set, but {nameof(options.ClusterSecret)} is not (replicas authenticate their links with it).");
            }

            if (options.StoreFactory is null && options.PostgresConnectionString is null)
            {
                failures.Add($"{P}{nameof(options.ReplicaUrl)}: replicas share the PostgreSQL store; set {nameof(options.PostgresConnectionString)}.");
            }
        }

        if (options.ClusterSecret is { } secret)
        {
            if (options.ReplicaUrl is null)
            {
                failures.Add($"{P}{nameof(options.ClusterSecret)}: set, but {nameof(options.ReplicaUrl)} is not (other replicas need to know where to reach this one).");
            }

            if (secret.Length < MeshCoordinatorOptions.MinClusterSecretLength)
            {
                failures.Add($"{P}{nameof(options.ClusterSecret)}: too short ({secret.Length} characters; at least {MeshCoordinatorOptions.MinClusterSecretLength}).");
            }
            else if (secret.Any(char.IsWhiteSpace))
            {
                failures.Add($"{P}{nameof(options.ClusterSecret)}: must not contain white space.");
            }
        }

        if (options.ReplicaHeartbeatInterval < TimeSpan.FromSeconds(1) || options.ReplicaHeartbeatInterval > TimeSpan.FromMinutes(5))
        {
            failures.Add($"{P}{nameof(options.ReplicaHeartbeatInterval)}: {options.ReplicaHeartbeatInterval} must be 1 second to 5 minutes.");
        }

        if (options.ReplicaLinkQueueCapacity is < 1 or > 65536)
        {
            failures.Add($"{P}{nameof(options.ReplicaLinkQueueCapacity)}: {options.ReplicaLinkQueueCapacity} must be 1 to 65536 frames.");
        }
    }

    /// <summary>Parses a prefix whose address has no host bits set (IPNetwork.TryParse alone may accept and mask them).</summary>
    internal static bool TryParsePrefix(string? text, out IPNetwork prefix)
    {
        prefix = default;
        int slash = text?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        return slash > 0
            && IPNetwork.TryParse(text, out prefix)
            && IPAddress.TryParse(text.AsSpan(0, slash), out IPAddress? address)
            && address.Equals(prefix.BaseAddress);
    }

    private static void CheckPositive(List<string> failures, string option, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            failures.Add($"{P}{option}: {value} must be positive.");
        }
    }

    private static bool IsDnsSuffix(string? suffix)
    {
        if (string.IsNullOrEmpty(suffix) || suffix.Length > 200)
        {
            return false;
        }

        foreach (string label in suffix.Split('.'))
        {
            if (!NameRules.IsValid(label))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsHostPort(string? s) =>
        !string.IsNullOrWhiteSpace(s) && TunnelMesh.Net.WgQuickConfig.ParseEndpoint(s.Trim()) is not null; // the node parses it the same way
}
