using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using TunnelMesh.Net.WireGuard.Crypto;

namespace TunnelMesh.Net;

/// <summary>
/// A node's Curve25519 private key: its identity in the mesh. Parsed from and formatted as the same
/// base64 text as <c>wg genkey</c> produces.
/// </summary>
public sealed class NodePrivateKey : IEquatable<NodePrivateKey>
{
    /// <summary>Length of a key in bytes.</summary>
    public const int Length = 32;

    private readonly byte[] _key;

    private NodePrivateKey(byte[] key)
    {
        _key = key;
        var pub = new byte[Length];
        Curve25519.DerivePublicKey(_key, pub);
        PublicKey = new NodePublicKey(pub);
    }

    /// <summary>The matching public key (what <c>wg pubkey</c> prints).</summary>
    public NodePublicKey PublicKey { get; }

    /// <summary>The raw key bytes.</summary>
    internal ReadOnlySpan<byte> Bytes => _key;

    /// <summary>Generates a new random key (libsodium's generator), clamped as <c>wg genkey</c> does.</summary>
    public static NodePrivateKey Generate()
    {
        var key = new byte[Length];
        Curve25519.GenerateRawPrivateKey(key);
        return new NodePrivateKey(key);
    }

    /// <summary>Creates a key from 32 raw bytes.</summary>
    /// <exception cref="ArgumentException">The span is not 32 bytes long.</exception>
    public static NodePrivateKey FromBytes(ReadOnlySpan<byte> key)
    {
        if (key.Length != Length)
        {
            throw new ArgumentException($"A private key is {Length} bytes, not {key.Length}.", nameof(key));
        }

        return new NodePrivateKey(key.ToArray());
    }

    /// <summary>Parses the base64 form (44 characters).</summary>
    /// <exception cref="FormatException">The text is not a base64-encoded 32-byte key.</exception>
    public static NodePrivateKey Parse(string text) =>
        TryParse(text, out var key) ? key : throw new FormatException("A private key is 32 bytes in base64 (44 characters), as 'wg genkey' prints it.");

    /// <summary>Tries to parse the base64 form.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, [NotNullWhen(true)] out NodePrivateKey? key)
    {
        key = null;
        Span<byte> bytes = stackalloc byte[Length];
        try
        {
            if (!KeyText.TryDecode(text, bytes))
            {
                return false;
            }

            key = new NodePrivateKey(bytes.ToArray());
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    /// <summary>The base64 form. Treat it as a secret.</summary>
    public string ToBase64() => Convert.ToBase64String(_key);

    /// <summary>Returns a redacted form so the key never lands in a log by accident.</summary>
    public override string ToString() => $"(private key for {PublicKey})";

    /// <inheritdoc/>
    public bool Equals(NodePrivateKey? other) => other is not null && CryptographicOperations.FixedTimeEquals(_key, other._key);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as NodePrivateKey);

    /// <inheritdoc/>
    public override int GetHashCode() => PublicKey.GetHashCode();
}

/// <summary>A node's Curve25519 public key, in the same base64 form as <c>wg pubkey</c> prints.</summary>
public readonly struct NodePublicKey : IEquatable<NodePublicKey>
{
    private readonly byte[]? _key;

    internal NodePublicKey(byte[] key) => _key = key;

    /// <summary>Whether this is a real key (not <c>default</c>).</summary>
    public bool IsSet => _key is not null;

    /// <summary>The raw key bytes (32 zero bytes for <c>default</c>).</summary>
    internal ReadOnlySpan<byte> Bytes => _key ?? new byte[NodePrivateKey.Length];

    /// <summary>Creates a key from 32 raw bytes.</summary>
    /// <exception cref="ArgumentException">The span is not 32 bytes long.</exception>
    public static NodePublicKey FromBytes(ReadOnlySpan<byte> key)
    {
        if (key.Length != NodePrivateKey.Length)
        {
            throw new ArgumentException($"A public key is {NodePrivateKey.Length} bytes, not {key.Length}.", nameof(key));
        }

        return new NodePublicKey(key.ToArray());
    }

    /// <summary>Parses the base64 form (44 characters).</summary>
    /// <exception cref="FormatException">The text is not a base64-encoded 32-byte key.</exception>
    public static NodePublicKey Parse(string text) =>
        TryParse(text, out var key) ? key : throw new FormatException("A public key is 32 bytes in base64 (44 characters), as 'wg pubkey' prints it.");

    /// <summary>Tries to parse the base64 form.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out NodePublicKey key)
    {
        key = default;
        Span<byte> bytes = stackalloc byte[NodePrivateKey.Length];
        if (!KeyText.TryDecode(text, bytes))
        {
            return false;
        }

        key = new NodePublicKey(bytes.ToArray());
        return true;
    }

    /// <summary>Copies the raw key bytes.</summary>
    public void CopyTo(Span<byte> destination) => Bytes.CopyTo(destination);

    /// <summary>The base64 form.</summary>
    public override string ToString() => Convert.ToBase64String(Bytes);

    /// <inheritdoc/>
    public bool Equals(NodePublicKey other) => Bytes.SequenceEqual(other.Bytes);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is NodePublicKey other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var b = Bytes;
        return HashCode.Combine(BitConverter.ToInt64(b), BitConverter.ToInt64(b[8..]));
    }

    /// <summary>Equality.</summary>
    public static bool operator ==(NodePublicKey left, NodePublicKey right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(NodePublicKey left, NodePublicKey right) => !left.Equals(right);
}

/// <summary>The base64 text form shared by WireGuard private, public and preshared keys.</summary>
internal static class KeyText
{
    public static bool TryDecode(string? text, Span<byte> destination)
    {
        if (text is null)
        {
            return false;
        }

        text = text.Trim();
        return text.Length == 44 && Convert.TryFromBase64String(text, destination, out int written) && written == destination.Length;
    }
}
