using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Stack.Tcp;
using TunnelMesh.Net.Tests.Wire;

namespace TunnelMesh.Net.Tests.Stack.Tcp;

public class SeqNumberTests
{
    // Offsets from a common base, kept within 2^30 of it so any two are within 2^31 of each other:
    // the model compares the offsets as plain longs, the code compares the wrapped numbers.
    private const int Half = 1 << 30;

    private static readonly Gen<int> Offset = Gen.Frequency(
        (3, Gen.Choose(-Half + 1, Half - 1)),
        (1, Gen.Choose(-3, 3)));

    // Bases near the wrap point are the interesting ones.
    private static readonly Gen<uint> Base = Gen.Frequency(
        (2, WireGen.UInt),
        (1, Gen.Choose(-5, 5).Select(d => unchecked((uint)d))),
        (1, Gen.Choose(-5, 5).Select(d => unchecked(0x8000_0000u + (uint)d))));

    private static SeqNumber At(uint origin, long offset) => new(unchecked((uint)(origin + offset)));

    [Property]
    public Property Distance_and_comparisons_agree_with_long_arithmetic_across_the_wrap()
    {
        var gen = Gen.Zip(Base, Gen.Two(Offset));
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (origin, (x, y)) = t;
            SeqNumber a = At(origin, x), b = At(origin, y);
            long model = (long)x - y;
            return a - b == model
                && (a < b) == (x < y)
                && (a <= b) == (x <= y)
                && (a > b) == (x > y)
                && (a >= b) == (x >= y)
                && (a == b) == (x == y)
                && a.CompareTo(b) == Math.Sign(model)
                && SeqNumber.Max(a, b) == At(origin, Math.Max(x, y))
                && SeqNumber.Min(a, b) == At(origin, Math.Min(x, y));
        });
    }

    [Property]
    public Property Adding_and_subtracting_are_inverse_and_match_the_model()
    {
        var gen = Gen.Zip(WireGen.UInt, Gen.Two(WireGen.UShort).Select(p => (int)(((uint)p.Item1 << 16) | p.Item2)));
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (value, n) = t;
            var s = new SeqNumber(value);
            return s + n - n == s
                && s - n + n == s
                && (s + n).Value == (uint)(((long)value + n) & 0xFFFF_FFFF)
                && (s - n).Value == (uint)(((long)value - n) & 0xFFFF_FFFF)
                && (s + n) - s == n;
        });
    }

    [Property]
    public Property Order_is_transitive_within_a_window()
    {
        var gen = Gen.Zip(Base, Gen.Zip(Offset, Gen.Two(Offset)));
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (origin, (x, (y, z))) = t;
            SeqNumber a = At(origin, x), b = At(origin, y), c = At(origin, z);
            return !(a < b && b < c) || a < c;
        });
    }

    [Property]
    public Property In_range_agrees_with_the_model()
    {
        var gen = Gen.Zip(Base, Gen.Zip(Offset, Gen.Two(Offset)));
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (origin, (x, (start, end))) = t;
            return At(origin, x).IsInRange(At(origin, start), At(origin, end)) == (start <= x && x < end);
        });
    }

    [Fact]
    public void Wrap_point_examples()
    {
        var top = new SeqNumber(uint.MaxValue);
        var zero = new SeqNumber(0);
        Assert.True(top < zero);
        Assert.Equal(1, zero - top);
        Assert.Equal(-1, top - zero);
        Assert.Equal(zero, top + 1);
        Assert.Equal(top, zero - 1);
        Assert.Equal(zero, SeqNumber.Max(top, zero));
        Assert.True(top.IsInRange(new SeqNumber(uint.MaxValue - 10), new SeqNumber(5)));
        Assert.True(zero.IsInRange(new SeqNumber(uint.MaxValue - 10), new SeqNumber(5)));
        Assert.False(new SeqNumber(5).IsInRange(new SeqNumber(uint.MaxValue - 10), new SeqNumber(5)));
        Assert.False(zero.IsInRange(zero, zero)); // an empty range holds nothing
        Assert.Equal("4294967295", top.ToString());
        Assert.Equal("0", zero.ToString());
    }
}
