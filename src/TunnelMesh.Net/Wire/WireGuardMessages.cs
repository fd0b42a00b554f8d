// Zero-copy views over the four WireGuard messages (whitepaper §5.4). Every view is created through
// TryCreate, which checks the exact length and the type word once; after that no accessor can fail.
// All integers on the wire (type, indices, counter) are little-endian, as WireGuard sends them.
using System.Buffers.Binary;

namespace TunnelMesh.Net.Wire;

/// <summary>
/// Spec constants of the WireGuard message formats: types, exact sizes and field offsets
/// (whitepaper §5.4, wireguard-go <c>device/noise-protocol.go</c>). Nothing here is a tunable.
/// </summary>
internal static class WireGuardSpec
{
    /// <summary>Type of a handshake initiation.</summary>
    public const uint TypeInitiation = 1;

    /// <summary>Type of a handshake response.</summary>
    public const uint TypeResponse = 2;

    /// <summary>Type of a cookie reply.</summary>
    public const uint TypeCookieReply = 3;

    /// <summary>Type of a transport data message.</summary>
    public const uint TypeTransport = 4;

    /// <summary>Size of a Curve25519 key on the wire.</summary>
    public const int KeySize = 32;

    /// <summary>Size of a Poly1305 tag.</summary>
    public const int TagSize = 16;

    /// <summary>Size of mac1 and mac2.</summary>
    public const int MacSize = 16;

    /// <summary>Size of a TAI64N timestamp.</summary>
    public const int TimestampSize = 12;

    /// <summary>Size of a cookie.</summary>
    public const int CookieSize = 16;

    /// <summary>Size of the XChaCha20 nonce of a cookie reply.</summary>
    public const int CookieNonceSize = 24;

    /// <summary>Exact size of a handshake initiation.</summary>
    public const int InitiationSize = 148;

    /// <summary>Exact size of a handshake response.</summary>
    public const int ResponseSize = 92;

    /// <summary>Exact size of a cookie reply.</summary>
    public const int CookieReplySize = 64;

    /// <summary>Size of the transport header (type, receiver, counter).</summary>
    public const int TransportHeaderSize = 16;

    /// <summary>Smallest transport message: header and tag around an empty (keepalive) payload.</summary>
    public const int TransportMinSize = TransportHeaderSize + TagSize;

    /// <summary>Field offsets of a handshake initiation.</summary>
    public static class Initiation
    {
        /// <summary>Sender index (4 bytes).</summary>
        public const int Sender = 4;

        /// <summary>Unencrypted ephemeral public key (32 bytes).</summary>
        public const int Ephemeral = 8;

        /// <summary>Encrypted static public key (32 + 16 bytes).</summary>
        public const int EncryptedStatic = 40;

        /// <summary>Size of the encrypted static key.</summary>
        public const int EncryptedStaticSize = KeySize + TagSize;

        /// <summary>Encrypted TAI64N timestamp (12 + 16 bytes).</summary>
        public const int EncryptedTimestamp = 88;

        /// <summary>Size of the encrypted timestamp.</summary>
        public const int EncryptedTimestampSize = TimestampSize + TagSize;

        /// <summary>mac1 (16 bytes).</summary>
        public const int Mac1 = 116;

        /// <summary>mac2 (16 bytes).</summary>
        public const int Mac2 = 132;
    }

    /// <summary>Field offsets of a handshake response.</summary>
    public static class Response
    {
        /// <summary>Sender index (4 bytes).</summary>
        public const int Sender = 4;

        /// <summary>Receiver index (4 bytes).</summary>
        public const int Receiver = 8;

        /// <summary>Unencrypted ephemeral public key (32 bytes).</summary>
        public const int Ephemeral = 12;

        /// <summary>Encrypted empty payload (16 bytes, only the tag).</summary>
        public const int EncryptedNothing = 44;

        /// <summary>mac1 (16 bytes).</summary>
        public const int Mac1 = 60;

        /// <summary>mac2 (16 bytes).</summary>
        public const int Mac2 = 76;
    }

    /// <summary>Field offsets of a cookie reply.</summary>
    public static class CookieReply
    {
        /// <summary>Receiver index (4 bytes).</summary>
        public const int Receiver = 4;

        /// <summary>Nonce (24 bytes).</summary>
        public const int Nonce = 8;

        /// <summary>Encrypted cookie (16 + 16 bytes).</summary>
        public const int EncryptedCookie = 32;

        /// <summary>Size of the encrypted cookie.</summary>
        public const int EncryptedCookieSize = CookieSize + TagSize;
    }

    /// <summary>Field offsets of a transport message.</summary>
    public static class Transport
    {
        /// <summary>Receiver index (4 bytes).</summary>
        public const int Receiver = 4;

        /// <summary>Counter (8 bytes).</summary>
        public const int Counter = 8;

        /// <summary>Encrypted packet and tag.</summary>
        public const int Payload = 16;
    }

    /// <summary>Reads the type word (the first 4 bytes, little-endian; the 3 reserved bytes must be zero for a known type).</summary>
    public static bool TryReadType(ReadOnlySpan<byte> message, out uint type)
    {
        if (message.Length < 4)
        {
            type = 0;
            return false;
        }

        type = BinaryPrimitives.ReadUInt32LittleEndian(message);
        return true;
    }

    /// <summary>Writes the type word (type and three zero reserved bytes).</summary>
    public static void WriteType(Span<byte> message, uint type) => BinaryPrimitives.WriteUInt32LittleEndian(message, type);

    /// <summary>The bytes mac1 covers: everything before mac1 (the last 32 bytes are mac1 and mac2).</summary>
    public static ReadOnlySpan<byte> Mac1Covered(ReadOnlySpan<byte> handshakeMessage) => handshakeMessage[..^(2 * MacSize)];

    /// <summary>The bytes mac2 covers: everything before mac2.</summary>
    public static ReadOnlySpan<byte> Mac2Covered(ReadOnlySpan<byte> handshakeMessage) => handshakeMessage[..^MacSize];
}

/// <summary>A view over a handshake initiation (type 1, exactly 148 bytes).</summary>
internal readonly ref struct InitiationMessage
{
    private readonly ReadOnlySpan<byte> _bytes;

    private InitiationMessage(ReadOnlySpan<byte> bytes) => _bytes = bytes;

    /// <summary>Creates the view if the bytes are exactly an initiation.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> bytes, out InitiationMessage message)
    {
        bool ok = bytes.Length == WireGuardSpec.InitiationSize
            && BinaryPrimitives.ReadUInt32LittleEndian(bytes) == WireGuardSpec.TypeInitiation;
        message = ok ? new InitiationMessage(bytes) : default;
        return ok;
    }

    /// <summary>The whole message.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>The sender's index.</summary>
    public uint Sender => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[WireGuardSpec.Initiation.Sender..]);

    /// <summary>The initiator's ephemeral public key.</summary>
    public ReadOnlySpan<byte> Ephemeral => _bytes.Slice(WireGuardSpec.Initiation.Ephemeral, WireGuardSpec.KeySize);

    /// <summary>The encrypted static public key with its tag.</summary>
    public ReadOnlySpan<byte> EncryptedStatic => _bytes.Slice(WireGuardSpec.Initiation.EncryptedStatic, WireGuardSpec.Initiation.EncryptedStaticSize);

    /// <summary>The encrypted timestamp with its tag.</summary>
    public ReadOnlySpan<byte> EncryptedTimestamp => _bytes.Slice(WireGuardSpec.Initiation.EncryptedTimestamp, WireGuardSpec.Initiation.EncryptedTimestampSize);

    /// <summary>mac1.</summary>
    public ReadOnlySpan<byte> Mac1 => _bytes.Slice(WireGuardSpec.Initiation.Mac1, WireGuardSpec.MacSize);

    /// <summary>mac2.</summary>
    public ReadOnlySpan<byte> Mac2 => _bytes.Slice(WireGuardSpec.Initiation.Mac2, WireGuardSpec.MacSize);
}

/// <summary>A view over a handshake response (type 2, exactly 92 bytes).</summary>
internal readonly ref struct ResponseMessage
{
    private readonly ReadOnlySpan<byte> _bytes;

    private ResponseMessage(ReadOnlySpan<byte> bytes) => _bytes = bytes;

    /// <summary>Creates the view if the bytes are exactly a response.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> bytes, out ResponseMessage message)
    {
        bool ok = bytes.Length == WireGuardSpec.ResponseSize
            && BinaryPrimitives.ReadUInt32LittleEndian(bytes) == WireGuardSpec.TypeResponse;
        message = ok ? new ResponseMessage(bytes) : default;
        return ok;
    }

    /// <summary>The whole message.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>The responder's index.</summary>
    public uint Sender => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[WireGuardSpec.Response.Sender..]);

    /// <summary>The initiator's index, echoed back.</summary>
    public uint Receiver => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[WireGuardSpec.Response.Receiver..]);

    /// <summary>The responder's ephemeral public key.</summary>
    public ReadOnlySpan<byte> Ephemeral => _bytes.Slice(WireGuardSpec.Response.Ephemeral, WireGuardSpec.KeySize);

    /// <summary>The encrypted empty payload (the tag only).</summary>
    public ReadOnlySpan<byte> EncryptedNothing => _bytes.Slice(WireGuardSpec.Response.EncryptedNothing, WireGuardSpec.TagSize);

    /// <summary>mac1.</summary>
    public ReadOnlySpan<byte> Mac1 => _bytes.Slice(WireGuardSpec.Response.Mac1, WireGuardSpec.MacSize);

    /// <summary>mac2.</summary>
    public ReadOnlySpan<byte> Mac2 => _bytes.Slice(WireGuardSpec.Response.Mac2, WireGuardSpec.MacSize);
}

/// <summary>A view over a cookie reply (type 3, exactly 64 bytes).</summary>
internal readonly ref struct CookieReplyMessage
{
    private readonly ReadOnlySpan<byte> _bytes;

    private CookieReplyMessage(ReadOnlySpan<byte> bytes) => _bytes = bytes;

    /// <summary>Creates the view if the bytes are exactly a cookie reply.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> bytes, out CookieReplyMessage message)
    {
        bool ok = bytes.Length == WireGuardSpec.CookieReplySize
            && BinaryPrimitives.ReadUInt32LittleEndian(bytes) == WireGuardSpec.TypeCookieReply;
        message = ok ? new CookieReplyMessage(bytes) : default;
        return ok;
    }

    /// <summary>The whole message.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>The index of the handshake this cookie answers (the sender index of that message).</summary>
    public uint Receiver => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[WireGuardSpec.CookieReply.Receiver..]);

    /// <summary>The 24-byte XChaCha20 nonce.</summary>
    public ReadOnlySpan<byte> Nonce => _bytes.Slice(WireGuardSpec.CookieReply.Nonce, WireGuardSpec.CookieNonceSize);

    /// <summary>The encrypted cookie with its tag.</summary>
    public ReadOnlySpan<byte> EncryptedCookie => _bytes.Slice(WireGuardSpec.CookieReply.EncryptedCookie, WireGuardSpec.CookieReply.EncryptedCookieSize);
}

/// <summary>A view over a transport data message (type 4, at least 32 bytes).</summary>
internal readonly ref struct TransportMessage
{
    private readonly ReadOnlySpan<byte> _bytes;

    private TransportMessage(ReadOnlySpan<byte> bytes) => _bytes = bytes;

    /// <summary>
    /// Creates the view if the bytes are a transport message: header and tag at least. The encrypted
    /// content need not be a multiple of 16 on receive.
    /// </summary>
    public static bool TryCreate(ReadOnlySpan<byte> bytes, out TransportMessage message)
    {
        bool ok = bytes.Length >= WireGuardSpec.TransportMinSize
            && BinaryPrimitives.ReadUInt32LittleEndian(bytes) == WireGuardSpec.TypeTransport;
        message = ok ? new TransportMessage(bytes) : default;
        return ok;
    }

    /// <summary>The whole message.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>The receiver's index (selects the keypair).</summary>
    public uint Receiver => BinaryPrimitives.ReadUInt32LittleEndian(_bytes[WireGuardSpec.Transport.Receiver..]);

    /// <summary>The message counter (the AEAD nonce).</summary>
    public ulong Counter => BinaryPrimitives.ReadUInt64LittleEndian(_bytes[WireGuardSpec.Transport.Counter..]);

    /// <summary>The encrypted packet followed by the tag.</summary>
    public ReadOnlySpan<byte> EncryptedPacket => _bytes[WireGuardSpec.Transport.Payload..];

    /// <summary>Writes a transport header (type 4, receiver, counter) into 16 bytes.</summary>
    public static void WriteHeader(Span<byte> header, uint receiver, ulong counter)
    {
        WireGuardSpec.WriteType(header, WireGuardSpec.TypeTransport);
        BinaryPrimitives.WriteUInt32LittleEndian(header[WireGuardSpec.Transport.Receiver..], receiver);
        BinaryPrimitives.WriteUInt64LittleEndian(header[WireGuardSpec.Transport.Counter..], counter);
    }
}
