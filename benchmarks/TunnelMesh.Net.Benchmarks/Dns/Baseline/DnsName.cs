// Benchmark-only: the hand-written DNS codec removed from src/ in issue 10 (DNS on Makaretu.Dns),
// kept unchanged but for its namespace as the reference of DnsAnswerBenchmarks.
using System.Text;

namespace TunnelMesh.Net.Benchmarks.Dns.Baseline;

/// <summary>
/// Domain names between the wire (length-prefixed labels, RFC 1035 §3.1, compression pointers
/// §4.1.4) and their presentation form: labels joined by dots, no trailing dot, the root as the
/// empty string. Inside a label a dot or backslash is escaped with a backslash and any byte
/// outside 0x21–0x7E as <c>\DDD</c> (decimal), as <c>dig</c> prints them, so every wire name has
/// exactly one presentation form and back.
/// </summary>
/// <remarks>
/// Reading follows compression pointers only strictly backwards, each one below the previous
/// target, so a loop is impossible; together with the 255-byte limit on the expanded name and the
/// bounds checks, a hostile message costs at most a few hundred steps and never throws.
/// </remarks>
internal static class DnsName
{
    /// <summary>The longest presentation form (255 wire bytes, each escaped as four characters).</summary>
    private const int MaxPresentationLength = DnsLimits.MaxNameLength * 4;

    /// <summary>
    /// Reads the name at <paramref name="offset"/> of <paramref name="message"/> and moves
    /// <paramref name="offset"/> past it (past the first pointer when compressed). False for a name
    /// that runs off the end, is too long, uses a reserved label type, or points forward or in a loop.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> message, ref int offset, out string name)
    {
        name = "";
        Span<char> text = stackalloc char[MaxPresentationLength];
        int length = 0;
        int position = offset;
        int lowestTarget = offset; // each pointer must point below this, and lowers it
        int wireLength = 0;
        int end = -1;
        while (true)
        {
            if ((uint)position >= (uint)message.Length)
            {
                return false;
            }

            byte b = message[position];
            if ((b & 0xC0) == 0xC0)
            {
                if (position + 1 >= message.Length)
                {
                    return false;
                }

                int target = ((b & 0x3F) << 8) | message[position + 1];
                if (target >= lowestTarget)
                {
                    return false; // forward, self or loop
                }

                if (end < 0)
                {
                    end = position + 2;
                }

                lowestTarget = target;
                position = target;
                continue;
            }

            if ((b & 0xC0) != 0)
            {
                return false; // 0x40 and 0x80: extended/reserved label types
            }

            if (b == 0)
            {
                if (end < 0)
                {
                    end = position + 1;
                }

                break;
            }

            wireLength += 1 + b;
            if (wireLength + 1 > DnsLimits.MaxNameLength || position + 1 + b > message.Length)
            {
                return false;
            }

            if (length > 0)
            {
                text[length++] = '.';
            }

            foreach (byte c in message.Slice(position + 1, b))
            {
                length += Escape(c, text[length..]);
            }

            position += 1 + b;
        }

        name = length == 0 ? "" : new string(text[..length]);
        offset = end;
        return true;
    }

    /// <summary>
    /// Splits a presentation-form name into its wire labels (escapes undone). False when a label is
    /// empty or over 63 bytes, an escape is bad, or the whole name is over 255 bytes on the wire.
    /// A trailing dot is allowed.
    /// </summary>
    public static bool TryGetLabels(string name, out List<byte[]> labels)
    {
        labels = [];
        if (name.Length == 0 || name == ".")
        {
            return true;
        }

        var current = new List<byte>(DnsLimits.MaxLabelLength);
        int wire = 1;
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (c == '.')
            {
                if (current.Count == 0)
                {
                    return false;
                }

                labels.Add([.. current]);
                wire += 1 + current.Count;
                current.Clear();
                if (i == name.Length - 1)
                {
                    break;
                }

                continue;
            }

            byte value;
            if (c == '\\')
            {
                if (i + 1 >= name.Length)
                {
                    return false;
                }

                if (i + 3 < name.Length && char.IsAsciiDigit(name[i + 1]) && char.IsAsciiDigit(name[i + 2]) && char.IsAsciiDigit(name[i + 3]))
                {
                    int d = ((name[i + 1] - '0') * 100) + ((name[i + 2] - '0') * 10) + (name[i + 3] - '0');
                    if (d > 255)
                    {
                        return false;
                    }

                    value = (byte)d;
                    i += 3;
                }
                else if (name[i + 1] > 0x7F)
                {
                    return false;
                }
                else
                {
                    value = (byte)name[i + 1];
                    i++;
                }
            }
            else if (c > 0x7F)
            {
                return false;
            }
            else
            {
                value = (byte)c;
            }

            current.Add(value);
            if (current.Count > DnsLimits.MaxLabelLength)
            {
                return false;
            }
        }

        if (current.Count > 0)
        {
            labels.Add([.. current]);
            wire += 1 + current.Count;
        }

        return wire <= DnsLimits.MaxNameLength;
    }

    /// <summary>Whether two presentation names are the same DNS name (ASCII case-insensitive, trailing dot ignored).</summary>
    public static bool EqualsIgnoreCase(string a, string b) =>
        string.Equals(a.TrimEnd('.'), b.TrimEnd('.'), StringComparison.OrdinalIgnoreCase);

    /// <summary>The presentation form of one label (escaped), e.g. for building names from parts.</summary>
    public static string EscapeLabel(ReadOnlySpan<byte> label)
    {
        var sb = new StringBuilder(label.Length);
        Span<char> scratch = stackalloc char[4];
        foreach (byte c in label)
        {
            sb.Append(scratch[..Escape(c, scratch)]);
        }

        return sb.ToString();
    }

    private static int Escape(byte c, Span<char> destination)
    {
        if (c is (byte)'.' or (byte)'\\')
        {
            destination[0] = '\\';
            destination[1] = (char)c;
            return 2;
        }

        if (c is < 0x21 or > 0x7E)
        {
            destination[0] = '\\';
            destination[1] = (char)('0' + (c / 100));
            destination[2] = (char)('0' + (c / 10 % 10));
            destination[3] = (char)('0' + (c % 10));
            return 4;
        }

        destination[0] = (char)c;
        return 1;
    }
}
