using System.Numerics;
using FsCheck.Xunit;
using TunnelMesh.Net.WireGuard.Crypto;

namespace TunnelMesh.Net.Tests.WireGuardTests.Crypto;

/// <summary>Which 32-byte strings <see cref="PublicKeyCheck"/> lets through as peer public keys.</summary>
public class PublicKeyCheckTests
{
    private static readonly BigInteger P = BigInteger.Pow(2, 255) - 19;

    public static TheoryData<string> SmallOrderPoints => new()
    {
        "0",
        "1",
        "325606250916557431795983626356110631294008115727848805560023387167927233504",
        "39382357235489614581723060781553021112529911719440698176882885853963445705823",
        "57896044618658097711785492504343953926634992332820282019728792003956564819948", // p - 1
    };

    [Theory]
    [MemberData(nameof(SmallOrderPoints))]
    public void Each_listed_point_really_has_small_order_and_is_refused(string u)
    {
        byte[] key = Encode(BigInteger.Parse(u, System.Globalization.CultureInfo.InvariantCulture));

        // Whatever our private key, the agreement with a small-order point is all zeros (libsodium refuses it).
        Span<byte> priv = stackalloc byte[32];
        Span<byte> pub = stackalloc byte[32];
        Span<byte> shared = stackalloc byte[32];
        for (int i = 0; i < 4; i++)
        {
            Curve25519.Generate(priv, pub);
            Assert.False(Curve25519.TryAgree(priv, key, shared));
        }

        Assert.StartsWith("a small-order", PublicKeyCheck.Problem(key), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]   // p: 0 again
    [InlineData(1)]   // p + 1: 1 again
    [InlineData(18)]  // 2^255 - 1: the largest value with the top bit clear
    public void Encodings_of_p_and_above_are_non_canonical(int aboveP)
    {
        Assert.StartsWith("a non-canonical", PublicKeyCheck.Problem(Encode(P + aboveP)), StringComparison.Ordinal);
    }

    [Property(MaxTest = 200)]
    public bool Generated_keys_pass_and_the_same_keys_with_the_top_bit_set_do_not(int seed)
    {
        _ = seed;
        Span<byte> priv = stackalloc byte[32];
        Span<byte> pub = stackalloc byte[32];
        Curve25519.Generate(priv, pub);
        byte[] high = pub.ToArray();
        high[31] |= 0x80;
        return PublicKeyCheck.Problem(pub) is null
            && PublicKeyCheck.Problem(high) is { } problem && problem.StartsWith("a non-canonical", StringComparison.Ordinal);
    }

    [Fact]
    public void The_largest_canonical_value_passes_and_wrong_lengths_do_not()
    {
        Assert.Null(PublicKeyCheck.Problem(Encode(P - 2))); // p - 2: canonical, not of small order
        Assert.Equal("not 32 bytes", PublicKeyCheck.Problem(new byte[31]));
    }

    private static byte[] Encode(BigInteger u)
    {
        byte[] bytes = new byte[32];
        Assert.True(u.TryWriteBytes(bytes, out _, isUnsigned: true, isBigEndian: false));
        return bytes;
    }
}
