using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TunnelMesh.Net.Server.Stores;

/// <summary>
/// Host names and addresses in the mesh. A name is one DNS label: lowercase letters, digits and
/// hyphens, 1 to 63 characters, not starting or ending with a hyphen. A requested host name is
/// normalised (lowercased; other characters become hyphens; trimmed). When another node already
/// has the name, the newcomer gets the first free of <c>name-2</c>, <c>name-3</c>, … (the node that
/// had it keeps it; a node re-joining with the same key keeps its own name).
/// </summary>
public static class NameRules
{
    /// <summary>The longest label.</summary>
    public const int MaxLength = 63;

    /// <summary>Normalises a requested host name to a label; "node" when nothing usable is left.</summary>
    public static string Normalize(string? hostname)
    {
        var sb = new StringBuilder(Math.Min(hostname?.Length ?? 0, MaxLength));
        foreach (char c in (hostname ?? "").Trim().ToLowerInvariant())
        {
            if (sb.Length == MaxLength)
            {
                break;
            }

            sb.Append(c is (>= 'a' and <= 'z') or (>= '0' and <= '9') ? c : '-');
        }

        string s = sb.ToString().Trim('-');
        while (s.Contains("--", StringComparison.Ordinal))
        {
            s = s.Replace("--", "-", StringComparison.Ordinal);
        }

        return s.Length == 0 ? "node" : s;
    }

    /// <summary>Whether <paramref name="name"/> is already a valid label.</summary>
    public static bool IsValid(string? name) => name is { Length: > 0 and <= MaxLength } && Normalize(name) == name;

    /// <summary>The candidate for the <paramref name="n"/>th clash (n ≥ 2): <c>base-n</c>, the base shortened to fit.</summary>
    public static string WithSuffix(string name, int n)
    {
        string suffix = "-" + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string b = name.Length + suffix.Length > MaxLength ? name[..(MaxLength - suffix.Length)].TrimEnd('-') : name;
        return b + suffix;
    }

    /// <summary>The IPv6 address of a node: the prefix with the node's IPv4 address in the last 32 bits.</summary>
    public static IPAddress Address6For(IPNetwork prefix6, IPAddress address4)
    {
        if (prefix6.BaseAddress.AddressFamily != AddressFamily.InterNetworkV6 || prefix6.PrefixLength > 96)
        {
            throw new ArgumentException("The IPv6 prefix must be /96 or shorter.", nameof(prefix6));
        }

        byte[] bytes = prefix6.BaseAddress.GetAddressBytes();
        address4.TryWriteBytes(bytes.AsSpan(12), out _);
        return new IPAddress(bytes);
    }

    /// <summary>The number of usable IPv4 addresses in a prefix (network and broadcast left out).</summary>
    public static long UsableCount(IPNetwork prefix4) => prefix4.PrefixLength >= 31 ? 0 : (1L << (32 - prefix4.PrefixLength)) - 2;

    /// <summary>The <paramref name="index"/>th usable IPv4 address of a prefix (index 0 = network + 1).</summary>
    public static IPAddress Address4At(IPNetwork prefix4, long index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, UsableCount(prefix4));
        Span<byte> b = stackalloc byte[4];
        prefix4.BaseAddress.TryWriteBytes(b, out _);
        uint v = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b) + (uint)index + 1;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b, v);
        return new IPAddress(b);
    }

    /// <summary>The index of an IPv4 address in a prefix (inverse of <see cref="Address4At"/>).</summary>
    public static long IndexOf(IPNetwork prefix4, IPAddress address4)
    {
        Span<byte> a = stackalloc byte[4];
        Span<byte> b = stackalloc byte[4];
        prefix4.BaseAddress.TryWriteBytes(b, out _);
        address4.TryWriteBytes(a, out _);
        return (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(a) - System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b) - 1;
    }
}
