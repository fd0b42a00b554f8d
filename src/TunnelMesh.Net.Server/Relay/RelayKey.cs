using System.Buffers.Binary;

namespace TunnelMesh.Net.Server.Relay;

/// <summary>A node's public key as a value (the 32 bytes in front of a relay frame), compared without allocating.</summary>
internal readonly record struct RelayKey(UInt128 High, UInt128 Low)
{
    /// <summary>Length of a key on the wire.</summary>
    public const int Length = 32;

    /// <summary>Reads the first 32 bytes of <paramref name="bytes"/>.</summary>
    public static RelayKey Read(ReadOnlySpan<byte> bytes) =>
        new(BinaryPrimitives.ReadUInt128BigEndian(bytes), BinaryPrimitives.ReadUInt128BigEndian(bytes[16..]));

    public static RelayKey From(NodePublicKey key)
    {
        Span<byte> bytes = stackalloc byte[Length];
        key.CopyTo(bytes);
        return Read(bytes);
    }

    /// <summary>Writes the 32 bytes to the start of <paramref name="destination"/>.</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt128BigEndian(destination, High);
        BinaryPrimitives.WriteUInt128BigEndian(destination[16..], Low);
    }

    /// <summary>The 32 bytes in a new array (for the store).</summary>
    public byte[] ToArray()
    {
        byte[] bytes = new byte[Length];
        Write(bytes);
        return bytes;
    }

    /// <summary>The base64 form, as <c>wg pubkey</c> prints it (for logs).</summary>
    public override string ToString() => Convert.ToBase64String(ToArray());
}
