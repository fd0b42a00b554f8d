using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace TunnelMesh.Net.Server.Api;

/// <summary>
/// The secrets the coordinator hands out: <c>&lt;kind&gt;-&lt;id&gt;-&lt;secret&gt;</c>, where the id
/// finds the record and the secret is 32 random bytes in lowercase hex. Only SHA-256 of the secret
/// is stored; checks compare hashes in constant time.
/// </summary>
internal static class BearerSecret
{
    /// <summary>The kind of an auth key.</summary>
    public const string AuthKeyKind = "tmkey";

    /// <summary>The kind of a node token.</summary>
    public const string NodeTokenKind = "tmnode";

    private const int SecretBytes = 32;

    /// <summary>A new random secret (hex) and its hash.</summary>
    public static (string Secret, byte[] Hash) NewSecret()
    {
        Span<byte> raw = stackalloc byte[SecretBytes];
        RandomNumberGenerator.Fill(raw);
        string secret = Convert.ToHexStringLower(raw);
        CryptographicOperations.ZeroMemory(raw);
        return (secret, Hash(secret));
    }

    /// <summary>The text handed out.</summary>
    public static string Format(string kind, long id, string secret) =>
        string.Create(CultureInfo.InvariantCulture, $"{kind}-{id}-{secret}");

    /// <summary>SHA-256 of a secret's UTF-8 bytes.</summary>
    public static byte[] Hash(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));

    /// <summary>Splits <c>kind-id-secret</c>; false when the text is not of that kind and shape.</summary>
    public static bool TryParse(string? text, string kind, out long id, out string secret)
    {
        id = 0;
        secret = "";
        if (text is null || text.Length > 200 || !text.StartsWith(kind + "-", StringComparison.Ordinal))
        {
            return false;
        }

        ReadOnlySpan<char> rest = text.AsSpan(kind.Length + 1);
        int dash = rest.IndexOf('-');
        if (dash <= 0
            || !long.TryParse(rest[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out id)
            || rest.Length - dash - 1 != SecretBytes * 2)
        {
            return false;
        }

        secret = rest[(dash + 1)..].ToString();
        return true;
    }

    /// <summary>Whether the secret's hash equals <paramref name="storedHash"/>, in constant time.</summary>
    public static bool Matches(string secret, byte[] storedHash) =>
        CryptographicOperations.FixedTimeEquals(Hash(secret), storedHash);
}
