using Microsoft.Extensions.Primitives;

namespace SidecarGateway;

/// <summary>
/// Headers that describe one connection rather than the message (RFC 9110 section 7.6.1), so a proxy
/// must not forward them: the fixed set plus every header that <c>Connection</c> names.
/// </summary>
public static class HopByHopHeaders
{
    private static readonly HashSet<string> Fixed = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
        "TE", "Trailer", "Transfer-Encoding", "Upgrade",
    };

    /// <summary>Whether <paramref name="name"/> is hop-by-hop by itself (without looking at <c>Connection</c>).</summary>
    public static bool IsFixed(string name) =>
        Fixed.Contains(name) || name.StartsWith("Proxy-", StringComparison.OrdinalIgnoreCase);

    /// <summary>The header names listed in the <c>Connection</c> header's values (comma-separated tokens).</summary>
    public static HashSet<string> Listed(StringValues connection)
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (string? value in connection)
        {
            if (value is null)
            {
                continue;
            }

            foreach (string token in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                names.Add(token);
            }
        }

        return names;
    }

    /// <summary>Whether a header must not be forwarded, given the names the <c>Connection</c> header lists.</summary>
    public static bool Drop(string name, HashSet<string> listed) => IsFixed(name) || listed.Contains(name);
}
