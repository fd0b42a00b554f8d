using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using Makaretu.Dns;

namespace TunnelMesh.Net.Wire.Dns;

/// <summary>
/// Names of the reverse zones (RFC 1035 §3.5 in-addr.arpa, RFC 3596 ip6.arpa). The forward
/// direction is Makaretu.Dns's <see cref="IPAddressExtensions.GetArpaName"/>; the way back, from a
/// name to its address, Makaretu.Dns lacks, so it is here.
/// </summary>
internal static class DnsReverseName
{
    /// <summary>The reverse name of an address, e.g. <c>1.0.64.100.in-addr.arpa</c>.</summary>
    public static string For(IPAddress address) => address.GetArpaName();

    /// <summary>
    /// Reads a full reverse name (presentation form, any case, trailing dot allowed) back into its
    /// address. False for names that are not under in-addr.arpa/ip6.arpa, or that name only part of
    /// an address (a zone, not a host).
    /// </summary>
    public static bool TryParse(string name, [NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        string n = name.TrimEnd('.').ToLowerInvariant();
        if (n.EndsWith(".in-addr.arpa", StringComparison.Ordinal))
        {
            var parts = n[..^".in-addr.arpa".Length].Split('.');
            if (parts.Length != 4)
            {
                return false;
            }

            Span<byte> bytes = stackalloc byte[4];
            for (int i = 0; i < 4; i++)
            {
                // Canonical decimal only: no sign, no leading zeros.
                string p = parts[3 - i];
                if (p.Length is 0 or > 3 || (p.Length > 1 && p[0] == '0') || !p.All(char.IsAsciiDigit) || int.Parse(p, CultureInfo.InvariantCulture) > 255)
                {
                    return false;
                }

                bytes[i] = byte.Parse(p, CultureInfo.InvariantCulture);
            }

            address = new IPAddress(bytes);
            return true;
        }

        if (n.EndsWith(".ip6.arpa", StringComparison.Ordinal))
        {
            var parts = n[..^".ip6.arpa".Length].Split('.');
            if (parts.Length != 32)
            {
                return false;
            }

            Span<byte> bytes = stackalloc byte[16];
            for (int i = 0; i < 32; i++)
            {
                string p = parts[31 - i];
                if (p.Length != 1 || !char.IsAsciiHexDigit(p[0]))
                {
                    return false;
                }

                int nibble = Convert.ToInt32(p, 16);
                bytes[i / 2] |= (byte)(i % 2 == 0 ? nibble << 4 : nibble);
            }

            address = new IPAddress(bytes);
            return true;
        }

        return false;
    }
}
