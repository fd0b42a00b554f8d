using System.Globalization;

namespace TunnelMesh.Net.BenchCommon;

/// <summary>Option values of the benchmark tools; a bad one is a <see cref="UsageException"/> naming the option.</summary>
internal static class BenchArgs
{
    /// <summary>A whole number in <paramref name="min"/>..<paramref name="max"/>.</summary>
    public static int Int(string name, string text, int min, int max = int.MaxValue) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v >= min && v <= max
            ? v
            : throw new UsageException($"{name}: '{text}' is not a whole number in {min}..{max}");

    /// <summary>A byte count with an optional K, M or G suffix (powers of 1024), in <paramref name="min"/>..<paramref name="max"/>.</summary>
    public static long Size(string name, string text, long min, long max, string range)
    {
        long unit = 1;
        string digits = text;
        if (text.Length > 0 && char.ToUpperInvariant(text[^1]) is 'K' or 'M' or 'G')
        {
            unit = char.ToUpperInvariant(text[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, _ => 1L << 30 };
            digits = text[..^1];
        }

        return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long v) && v <= max / unit && v * unit >= min
            ? v * unit
            : throw new UsageException($"{name}: '{text}' is not a size{range} (e.g. 1G, 512M, 1048576)");
    }
}
