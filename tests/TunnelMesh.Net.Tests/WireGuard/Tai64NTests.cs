using FsCheck.Xunit;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.WireGuardTests;

public class Tai64NTests
{
    [Fact]
    public void Unix_epoch_is_2_to_the_62_seconds_big_endian()
    {
        var bytes = new byte[Tai64N.Size];
        Tai64N.FromDateTimeOffset(DateTimeOffset.UnixEpoch).WriteTo(bytes);
        Assert.Equal(Convert.FromHexString("400000000000000000000000"), bytes);
    }

    [Fact]
    public void Nanoseconds_are_whitened_to_a_2_to_the_24_granularity()
    {
        var t = DateTimeOffset.UnixEpoch.AddSeconds(1000).AddTicks(9_999_999); // .9999999 s
        var tai = Tai64N.FromDateTimeOffset(t);
        Assert.Equal((1UL << 62) + 1000, tai.Seconds);
        Assert.Equal(0u, tai.Nanoseconds % (1u << 24));
        Assert.True(tai.Nanoseconds <= 999_999_900);
        Assert.True(999_999_900 - tai.Nanoseconds < (1u << 24));
    }

    [Property]
    public bool Write_then_read_is_identity_and_order_follows_time(long a, int b)
    {
        long ticksA = Math.Abs(a % (DateTimeOffset.MaxValue.UtcTicks / 2));
        long ticksB = Math.Abs((long)b * 1_000_003);
        var ta = Tai64N.FromDateTimeOffset(new DateTimeOffset(ticksA, TimeSpan.Zero));
        var tb = Tai64N.FromDateTimeOffset(new DateTimeOffset(ticksA, TimeSpan.Zero).AddTicks(ticksB));
        var bytes = new byte[Tai64N.Size];
        ta.WriteTo(bytes);
        return Tai64N.Read(bytes) == ta && ta <= tb && (ticksB < 200_000 || ta < tb);
    }

    [Fact]
    public void Byte_order_sorts_like_the_value()
    {
        var earlier = Tai64N.FromDateTimeOffset(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var later = Tai64N.FromDateTimeOffset(new DateTimeOffset(2026, 1, 1, 0, 0, 1, TimeSpan.Zero));
        var a = new byte[12];
        var b = new byte[12];
        earlier.WriteTo(a);
        later.WriteTo(b);
        Assert.True(a.AsSpan().SequenceCompareTo(b) < 0);
        Assert.True(earlier.CompareTo(later) < 0);
    }
}
