using System.Globalization;

namespace TunnelMesh.Net.Stack.Tcp;

/// <summary>
/// A TCP sequence number: arithmetic and comparison modulo 2^32 (RFC 9293 section 3.4, the
/// "serial number" rule of RFC 1982). Comparisons look at the signed 32-bit distance, so they are
/// meaningful only between numbers less than 2^31 apart, which TCP's windows guarantee.
/// </summary>
/// <remarks>
/// The order is not total across the whole space (for any <c>a</c>, <c>a + 2^31</c> is both
/// "less" and "greater" depending on the side), so <see cref="CompareTo"/> must not be used to sort
/// numbers spread over more than half the space. <see cref="Max"/>, <see cref="Min"/> and
/// <see cref="IsInRange"/> follow the same rule.
/// </remarks>
/// <param name="Value">The number as carried on the wire.</param>
internal readonly record struct SeqNumber(uint Value) : IComparable<SeqNumber>
{
    /// <summary>The number <paramref name="n"/> bytes after <paramref name="s"/> (wraps).</summary>
    public static SeqNumber operator +(SeqNumber s, int n) => new(unchecked(s.Value + (uint)n));

    /// <summary>The number <paramref name="n"/> bytes before <paramref name="s"/> (wraps).</summary>
    public static SeqNumber operator -(SeqNumber s, int n) => new(unchecked(s.Value - (uint)n));

    /// <summary>The signed distance <c>a - b</c>: positive when <paramref name="a"/> is after <paramref name="b"/>.</summary>
    public static int operator -(SeqNumber a, SeqNumber b) => unchecked((int)(a.Value - b.Value));

    /// <summary>True when <paramref name="a"/> comes before <paramref name="b"/>.</summary>
    public static bool operator <(SeqNumber a, SeqNumber b) => a - b < 0;

    /// <summary>True when <paramref name="a"/> comes before or equals <paramref name="b"/>.</summary>
    public static bool operator <=(SeqNumber a, SeqNumber b) => a - b <= 0;

    /// <summary>True when <paramref name="a"/> comes after <paramref name="b"/>.</summary>
    public static bool operator >(SeqNumber a, SeqNumber b) => a - b > 0;

    /// <summary>True when <paramref name="a"/> comes after or equals <paramref name="b"/>.</summary>
    public static bool operator >=(SeqNumber a, SeqNumber b) => a - b >= 0;

    /// <summary>The later of two numbers (by the signed distance).</summary>
    public static SeqNumber Max(SeqNumber a, SeqNumber b) => a - b >= 0 ? a : b;

    /// <summary>The earlier of two numbers (by the signed distance).</summary>
    public static SeqNumber Min(SeqNumber a, SeqNumber b) => a - b <= 0 ? a : b;

    /// <summary>
    /// True when <c><paramref name="start"/> &lt;= this &lt; <paramref name="end"/></c> in sequence
    /// space. An empty or reversed range (<c>end &lt;= start</c>) contains nothing.
    /// </summary>
    public bool IsInRange(SeqNumber start, SeqNumber end) => start <= this && this < end;

    /// <summary>The sign of the signed distance <c>this - other</c> (see the remarks on the type).</summary>
    public int CompareTo(SeqNumber other) => Math.Sign(this - other);

    /// <summary>The number in decimal.</summary>
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}
