using System.Text;
using FsCheck.Xunit;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Macs;
using Org.BouncyCastle.Crypto.Parameters;
using TunnelMesh.Net.WireGuard.Crypto;

namespace TunnelMesh.Net.Tests.WireGuardTests.Crypto;

/// <summary>The primitives against published vectors, and BLAKE2s/HMAC against BouncyCastle.</summary>
public class PrimitiveVectorTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex);

    private static byte[] Sequence(byte first, int count) => Enumerable.Range(0, count).Select(i => (byte)(first + i)).ToArray();

    [Fact]
    public void Blake2s256_matches_RFC7693_appendix_B_abc()
    {
        var digest = new byte[32];
        Blake2s.Hash("abc"u8, digest);
        Assert.Equal(Hex("508C5E8C327C14E2E1A72BA34EEB452F37458B209ED63A294D999B4C86675982"), digest);
    }

    [Fact]
    public void Blake2s256_of_empty_input_matches_the_reference_digest()
    {
        var digest = new byte[32];
        Blake2s.Hash(ReadOnlySpan<byte>.Empty, digest);
        Assert.Equal(Hex("69217A3079908094E11121D042354A7C1F55B6482CA1A51E1B250DFD1ED0EEF9"), digest);
    }

    /// <summary>
    /// RFC 7693 appendix E: BLAKE2s-256 over the unkeyed and keyed digests (output 16, 20, 28, 32 bytes)
    /// of the generated inputs of 0, 3, 64, 65, 255 and 1024 bytes.
    /// </summary>
    [Fact]
    public void Blake2s_passes_the_RFC7693_appendix_E_self_test()
    {
        int[] outputLengths = [16, 20, 28, 32];
        int[] inputLengths = [0, 3, 64, 65, 255, 1024];
        var grand = new Blake2s(32);
        var input = new byte[1024];
        var key = new byte[32];
        var digest = new byte[32];
        foreach (int outputLength in outputLengths)
        {
            foreach (int inputLength in inputLengths)
            {
                SelfTestSequence(input.AsSpan(0, inputLength), (uint)inputLength);
                var unkeyed = new Blake2s(outputLength);
                unkeyed.Update(input.AsSpan(0, inputLength));
                unkeyed.Finish(digest.AsSpan(0, outputLength));
                grand.Update(digest.AsSpan(0, outputLength));

                SelfTestSequence(key.AsSpan(0, outputLength), (uint)outputLength);
                var keyed = new Blake2s(outputLength, key.AsSpan(0, outputLength));
                keyed.Update(input.AsSpan(0, inputLength));
                keyed.Finish(digest.AsSpan(0, outputLength));
                grand.Update(digest.AsSpan(0, outputLength));
            }
        }

        grand.Finish(digest);
        Assert.Equal(Hex("6A411F08CE25ADCDFB02ABA641451CEC53C598B24F4FC787FBDC88797F4C1DFE"), digest);

        // RFC 7693's deterministic byte sequence (a Fibonacci-like generator seeded by the length).
        static void SelfTestSequence(Span<byte> output, uint seed)
        {
            uint a = 0xDEAD4BAD * seed;
            uint b = 1;
            for (int i = 0; i < output.Length; i++)
            {
                uint t = a + b;
                a = b;
                b = t;
                output[i] = (byte)(t >> 24);
            }
        }
    }

    /// <summary>Our BLAKE2s against BouncyCastle's, unkeyed and keyed, every output length, input fed in two uneven pieces.</summary>
    [Property]
    public bool Blake2s_agrees_with_BouncyCastle(byte[] data, byte[] keySeed, byte outputSeed)
    {
        data ??= [];
        var key = keySeed is null ? [] : keySeed[..Math.Min(keySeed.Length, 32)];
        int outputLength = 1 + (outputSeed % 32);
        var reference = key.Length == 0
            ? new Blake2sDigest(outputLength * 8)
            : new Blake2sDigest(key, outputLength, null, null);
        reference.BlockUpdate(data, 0, data.Length);
        var expected = new byte[outputLength];
        reference.DoFinal(expected, 0);

        var actual = new byte[outputLength];
        var mine = new Blake2s(outputLength, key);
        int split = data.Length / 3;
        mine.Update(data.AsSpan(0, split));
        mine.Update(data.AsSpan(split));
        mine.Finish(actual);
        return expected.AsSpan().SequenceEqual(actual);
    }

    [Fact]
    public void Blake2s_handles_inputs_of_exact_block_multiples()
    {
        foreach (int length in new[] { 63, 64, 65, 128, 129 })
        {
            var data = Sequence(1, length);
            var reference = new Blake2sDigest(256);
            reference.BlockUpdate(data, 0, data.Length);
            var expected = new byte[32];
            reference.DoFinal(expected, 0);
            var actual = new byte[32];
            Blake2s.Hash(data, actual);
            Assert.Equal(expected, actual);
        }
    }

    /// <summary>HMAC-BLAKE2s against BouncyCastle's HMac over Blake2sDigest, keys up to one block (64 bytes), input split in two.</summary>
    [Property]
    public bool HmacBlake2s_agrees_with_BouncyCastle_HMac_over_Blake2s(byte[] keySeed, byte[] data)
    {
        data ??= [];
        var key = keySeed is null ? [] : keySeed[..Math.Min(keySeed.Length, Blake2s.BlockSize)];
        var hmac = new HMac(new Blake2sDigest(256));
        hmac.Init(new KeyParameter(key));
        hmac.BlockUpdate(data, 0, data.Length);
        var expected = new byte[32];
        hmac.DoFinal(expected, 0);

        var actual = new byte[32];
        int split = data.Length / 2;
        HmacBlake2s.Compute(key, data.AsSpan(0, split), data.AsSpan(split), actual);
        return expected.AsSpan().SequenceEqual(actual);
    }

    [Fact]
    public void Kdf_follows_the_whitepaper_definition()
    {
        var key = Sequence(7, 32);
        var input = Sequence(100, 45);
        var t0 = new byte[32];
        var t1 = new byte[32];
        var t2 = new byte[32];
        var t3 = new byte[32];
        HmacBlake2s.Compute(key, input, default, t0);
        HmacBlake2s.Compute(t0, [1], default, t1);
        HmacBlake2s.Compute(t0, t2Input(t1, 2), default, t2);
        HmacBlake2s.Compute(t0, t2Input(t2, 3), default, t3);

        var a = new byte[32];
        var b = new byte[32];
        var c = new byte[32];
        NoiseKdf.Derive(key, input, a, b, c);
        Assert.Equal(t1, a);
        Assert.Equal(t2, b);
        Assert.Equal(t3, c);

        // Output may alias the key, as the handshake does with the chaining key.
        var ck = key.ToArray();
        NoiseKdf.Derive(ck, input, ck);
        Assert.Equal(t1, ck);

        static byte[] t2Input(byte[] previous, byte i) => [.. previous, i];
    }

    [Theory]
    [InlineData("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c", "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")]
    [InlineData("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")]
    [InlineData("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")]
    public void X25519_matches_RFC7748(string scalar, string u, string expected)
    {
        var shared = new byte[32];
        Assert.True(Curve25519.TryAgree(Hex(scalar), Hex(u), shared));
        Assert.Equal(Hex(expected), shared);
    }

    [Fact]
    public void X25519_public_keys_match_RFC7748_section_6_1()
    {
        var alice = NodePrivateKey.FromBytes(Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
        Assert.Equal(Hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"), alice.PublicKey.Bytes.ToArray());
    }

    [Fact]
    public void X25519_rejects_an_all_zero_result()
    {
        var shared = new byte[32];
        var smallOrder = new byte[32]; // u = 0
        Assert.False(Curve25519.TryAgree(Sequence(1, 32), smallOrder, shared));
        var one = new byte[32];
        one[0] = 1; // u = 1, order 1
        Assert.False(Curve25519.TryAgree(Sequence(1, 32), one, shared));
    }

    /// <summary>X25519 through libsodium against BouncyCastle's RFC 7748 code: public key derivation and agreement for random keys.</summary>
    [Property]
    public bool X25519_agrees_with_BouncyCastle(Guid a1, Guid a2, Guid b1, Guid b2)
    {
        byte[] alice = [.. a1.ToByteArray(), .. a2.ToByteArray()];
        byte[] bob = [.. b1.ToByteArray(), .. b2.ToByteArray()];
        var bobPublic = new byte[32];
        Org.BouncyCastle.Math.EC.Rfc7748.X25519.ScalarMultBase(bob, 0, bobPublic, 0);
        var expectedShared = new byte[32];
        Org.BouncyCastle.Math.EC.Rfc7748.X25519.ScalarMult(alice, 0, bobPublic, 0, expectedShared, 0);

        var ourBobPublic = new byte[32];
        Curve25519.DerivePublicKey(bob, ourBobPublic);
        var shared = new byte[32];
        bool agreed = Curve25519.TryAgree(alice, bobPublic, shared);
        return agreed && ourBobPublic.AsSpan().SequenceEqual(bobPublic) && shared.AsSpan().SequenceEqual(expectedShared);
    }

    [Fact]
    public void Generated_private_keys_are_clamped_and_distinct()
    {
        var keys = Enumerable.Range(0, 16).Select(_ => Convert.FromBase64String(NodePrivateKey.Generate().ToBase64())).ToArray();
        Assert.All(keys, k => Assert.True((k[0] & 7) == 0 && (k[31] & 0x80) == 0 && (k[31] & 0x40) != 0));
        Assert.Equal(keys.Length, keys.Select(Convert.ToHexString).Distinct().Count());
    }

    [Fact]
    public void XChaCha20Poly1305_matches_draft_irtf_cfrg_xchacha_appendix_A_3()
    {
        var key = Sequence(0x80, 32);
        var nonce = Sequence(0x40, 24);
        var aad = Hex("50515253c0c1c2c3c4c5c6c7");
        var plaintext = Encoding.ASCII.GetBytes("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
        var expected = Hex(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb" +
            "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452" +
            "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9" +
            "21f9664c97637da9768812f615c68b13b52e" +
            "c0875924c1c7987947deafd8780acf49");

        using var aead = new CookieAead(key);
        var sealedBytes = new byte[plaintext.Length + CookieAead.TagSize];
        aead.Seal(nonce, plaintext, aad, sealedBytes);
        Assert.Equal(expected, sealedBytes);

        var opened = new byte[plaintext.Length];
        Assert.True(aead.TryOpen(nonce, sealedBytes, aad, opened));
        Assert.Equal(plaintext, opened);

        sealedBytes[^1] ^= 1;
        Assert.False(aead.TryOpen(nonce, sealedBytes, aad, opened));
    }

    [Fact]
    public void NoiseAead_uses_a_little_endian_counter_after_four_zero_bytes()
    {
        var nonce = new byte[12];
        NoiseAead.WriteNonce(nonce, 0x0102030405060708);
        Assert.Equal(Hex("000000000807060504030201"), nonce);
    }

    [Fact]
    public void Initial_chaining_key_is_the_hash_of_the_construction_name()
    {
        var expected = new byte[32];
        var reference = new Blake2sDigest(256);
        var name = Encoding.ASCII.GetBytes("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s");
        reference.BlockUpdate(name, 0, name.Length);
        reference.DoFinal(expected, 0);
        Assert.Equal(expected, TunnelMesh.Net.WireGuard.NoiseHandshake.InitialChainingKey.ToArray());
    }
}
