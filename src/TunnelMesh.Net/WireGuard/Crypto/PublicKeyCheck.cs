namespace TunnelMesh.Net.WireGuard.Crypto;

/// <summary>
/// Whether 32 bytes can be a peer's X25519 public key. A small-order point makes every agreement
/// with it all zeros (the handshake refuses it, so a peer with such a key can never talk, and a
/// coordinator that hands it out would make every node choke on it); a non-canonical encoding (the
/// top bit set, or a value of p = 2^255 - 19 or more) names the same point as another key, so one
/// node would have two identities. Both are refused wherever a key comes from outside.
/// </summary>
internal static class PublicKeyCheck
{
    // The points of small order (libsodium's list, little-endian u-coordinates): 0, 1, the two points
    // of order 8, and p - 1; p and p + 1 (non-canonical 0 and 1) are caught by the range check.
    private static readonly byte[][] SmallOrder =
    [
        new byte[32],
        [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00],
        [0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57],
        [0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    ];

    /// <summary>Why <paramref name="publicKey"/> cannot be used, or null when it can.</summary>
    public static string? Problem(ReadOnlySpan<byte> publicKey)
    {
        if (publicKey.Length != 32)
        {
            return "not 32 bytes";
        }

        if (!IsCanonical(publicKey))
        {
            return "a non-canonical X25519 public key (the top bit set, or a value of 2^255 - 19 or more)";
        }

        foreach (byte[] point in SmallOrder)
        {
            if (publicKey.SequenceEqual(point))
            {
                return "a small-order X25519 public key (every agreement with it is all zeros)";
            }
        }

        return null;
    }

    // Below p = 2^255 - 19 (ed ff … ff 7f little-endian), top bit clear.
    private static bool IsCanonical(ReadOnlySpan<byte> u)
    {
        if ((u[31] & 0x80) != 0)
        {
            return false;
        }

        if (u[31] != 0x7f)
        {
            return true;
        }

        for (int i = 30; i >= 1; i--)
        {
            if (u[i] != 0xff)
            {
                return true;
            }
        }

        return u[0] < 0xed;
    }
}
