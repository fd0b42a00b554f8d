namespace TunnelMesh.Net.Server.Stores;

/// <summary>The decisions of a join that need no database: whether an auth key admits it, and which name is free.</summary>
internal static class JoinRules
{
    /// <summary>Why <paramref name="key"/> refuses a join at <paramref name="now"/>, or null when it admits it.</summary>
    public static JoinStatus? Refusal(AuthKeyRecord? key, DateTimeOffset now) => key switch
    {
        null => JoinStatus.KeyNotFound,
        { Revoked: not null } => JoinStatus.KeyRevoked,
        _ when key.Expires <= now => JoinStatus.KeyExpired,
        { Reusable: false, Uses: > 0 } => JoinStatus.KeyUsed,
        _ => null,
    };

    /// <summary>The first of <paramref name="hostname"/>, <c>hostname-2</c>, <c>hostname-3</c>, … not in <paramref name="taken"/>.</summary>
    public static string FirstFreeName(string hostname, IReadOnlySet<string> taken)
    {
        if (!taken.Contains(hostname))
        {
            return hostname;
        }

        for (int n = 2; ; n++)
        {
            string candidate = NameRules.WithSuffix(hostname, n);
            if (!taken.Contains(candidate))
            {
                return candidate;
            }
        }
    }
}
