using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace TunnelMesh.Net.Wire.Stun;

/// <summary>Constants of STUN (RFC 5389) that the binding exchange uses.</summary>
internal static class StunSpec
{
    /// <summary>The fixed value at bytes 4–7 of every RFC 5389 message.</summary>
    public const uint MagicCookie = 0x2112A442;

    /// <summary>Length of the header: type, length, cookie, 96-bit transaction id.</summary>
    public const int HeaderLength = 20;

    /// <summary>Method binding, class request.</summary>
    public const ushort BindingRequest = 0x0001;

    /// <summary>Method binding, class success response.</summary>
    public const ushort BindingSuccess = 0x0101;

    /// <summary>Method binding, class error response.</summary>
    public const ushort BindingError = 0x0111;

    public const ushort MappedAddress = 0x0001;
    public const ushort MessageIntegrity = 0x0008;
    public const ushort XorMappedAddress = 0x0020;
    public const ushort Software = 0x8022;
    public const ushort Fingerprint = 0x8028;

    /// <summary>XORed into the CRC-32 of a FINGERPRINT ("STUN").</summary>
    public const uint FingerprintXor = 0x5354554E;

    public const byte FamilyIPv4 = 0x01;
    public const byte FamilyIPv6 = 0x02;
}

/// <summary>The 96-bit transaction id of a STUN message.</summary>
internal readonly record struct StunTransactionId(uint High, ulong Low)
{
    /// <summary>A random id (RFC 5389 §6: uniformly and randomly chosen).</summary>
    public static StunTransactionId NewRandom()
    {
        Span<byte> bytes = stackalloc byte[12];
        RandomNumberGenerator.Fill(bytes);
        return Read(bytes);
    }

    public static StunTransactionId Read(ReadOnlySpan<byte> bytes) =>
        new(BinaryPrimitives.ReadUInt32BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[4..]));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, High);
        BinaryPrimitives.WriteUInt64BigEndian(destination[4..], Low);
    }
}

/// <summary>
/// A parsed STUN message (RFC 5389): its type, transaction id and, for binding responses, the
/// mapped address (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS). Only what the binding exchange needs
/// is read; other attributes are skipped.
/// </summary>
/// <param name="Type">The message type (method and class), e.g. <see cref="StunSpec.BindingRequest"/>.</param>
/// <param name="TransactionId">The transaction id.</param>
/// <param name="Mapped">The reflexive address the response reports, or null.</param>
/// <param name="HasFingerprint">Whether a FINGERPRINT attribute was present (it was then valid).</param>
internal readonly record struct StunMessage(ushort Type, StunTransactionId TransactionId, IPEndPoint? Mapped, bool HasFingerprint)
{
    /// <summary>
    /// The cheap test for the receive path: at least a header, the two top bits zero, the magic
    /// cookie at bytes 4–7, and a length field that is a multiple of 4 and matches the datagram. A
    /// WireGuard message (type 1–4 then three zero bytes) never passes: its bytes 4–7 are an index
    /// or a counter, and even a matching cookie needs byte 1 to be 0 and a length fitting exactly.
    /// </summary>
    public static bool IsStun(ReadOnlySpan<byte> datagram)
    {
        if (datagram.Length < StunSpec.HeaderLength || (datagram[0] & 0xC0) != 0
            || BinaryPrimitives.ReadUInt32BigEndian(datagram[4..]) != StunSpec.MagicCookie)
        {
            return false;
        }

        int length = BinaryPrimitives.ReadUInt16BigEndian(datagram[2..]);
        return (length & 3) == 0 && length + StunSpec.HeaderLength == datagram.Length;
    }

    /// <summary>
    /// Parses a whole datagram. False (never an exception) when it is not STUN (<see cref="IsStun"/>),
    /// an attribute runs past the end, an address attribute is malformed, or a FINGERPRINT is wrong or
    /// not last.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> datagram, out StunMessage message)
    {
        message = default;
        if (!IsStun(datagram))
        {
            return false;
        }

        ushort type = BinaryPrimitives.ReadUInt16BigEndian(datagram);
        var id = StunTransactionId.Read(datagram[8..]);
        IPEndPoint? xorMapped = null;
        IPEndPoint? mapped = null;
        bool fingerprint = false;
        int offset = StunSpec.HeaderLength;
        while (offset < datagram.Length)
        {
            if (fingerprint || offset + 4 > datagram.Length)
            {
                return false; // FINGERPRINT must be the last attribute
            }

            ushort attribute = BinaryPrimitives.ReadUInt16BigEndian(datagram[offset..]);
            int length = BinaryPrimitives.ReadUInt16BigEndian(datagram[(offset + 2)..]);
            int value = offset + 4;
            int next = value + ((length + 3) & ~3);
            if (next > datagram.Length)
            {
                return false;
            }

            var body = datagram.Slice(value, length);
            switch (attribute)
            {
                case StunSpec.XorMappedAddress:
                    if (!TryReadAddress(body, datagram.Slice(4, 16), out xorMapped))
                    {
                        return false;
                    }

                    break;
                case StunSpec.MappedAddress:
                    if (!TryReadAddress(body, default, out mapped))
                    {
                        return false;
                    }

                    break;
                case StunSpec.Fingerprint:
                    if (length != 4 || BinaryPrimitives.ReadUInt32BigEndian(body) != ComputeFingerprint(datagram[..offset]))
                    {
                        return false;
                    }

                    fingerprint = true;
                    break;
            }

            offset = next;
        }

        message = new StunMessage(type, id, xorMapped ?? mapped, fingerprint);
        return true;
    }

    /// <summary>Writes a binding request (with a FINGERPRINT when asked) and returns its length (20 or 28).</summary>
    public static int WriteBindingRequest(Span<byte> destination, StunTransactionId id, bool fingerprint = true)
    {
        int length = WriteHeader(destination, StunSpec.BindingRequest, id);
        return fingerprint ? AppendFingerprint(destination, length) : length;
    }

    /// <summary>
    /// Writes a binding success response reporting <paramref name="mapped"/> in an XOR-MAPPED-ADDRESS
    /// (an IPv4-mapped IPv6 address as IPv4), with a FINGERPRINT when asked; returns its length.
    /// </summary>
    public static int WriteBindingSuccess(Span<byte> destination, StunTransactionId id, IPEndPoint mapped, bool fingerprint = true)
    {
        int length = WriteHeader(destination, StunSpec.BindingSuccess, id);
        var address = mapped.Address.IsIPv4MappedToIPv6 ? mapped.Address.MapToIPv4() : mapped.Address;
        bool v4 = address.AddressFamily == AddressFamily.InterNetwork;
        int valueLength = v4 ? 8 : 20;
        var attribute = destination[length..];
        BinaryPrimitives.WriteUInt16BigEndian(attribute, StunSpec.XorMappedAddress);
        BinaryPrimitives.WriteUInt16BigEndian(attribute[2..], (ushort)valueLength);
        attribute[4] = 0;
        attribute[5] = v4 ? StunSpec.FamilyIPv4 : StunSpec.FamilyIPv6;
        BinaryPrimitives.WriteUInt16BigEndian(attribute[6..], (ushort)(mapped.Port ^ (StunSpec.MagicCookie >> 16)));
        var bytes = attribute.Slice(8, valueLength - 4);
        address.TryWriteBytes(bytes, out _);
        var key = destination.Slice(4, 16); // the cookie, then the transaction id
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] ^= key[i];
        }

        length += 4 + valueLength;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)(length - StunSpec.HeaderLength));
        return fingerprint ? AppendFingerprint(destination, length) : length;
    }

    private static int WriteHeader(Span<byte> destination, ushort type, StunTransactionId id)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, type);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], StunSpec.MagicCookie);
        id.Write(destination[8..]);
        return StunSpec.HeaderLength;
    }

    // The length field must already count the FINGERPRINT when the CRC is computed (RFC 5389 §15.5).
    private static int AppendFingerprint(Span<byte> destination, int length)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)(length + 8 - StunSpec.HeaderLength));
        BinaryPrimitives.WriteUInt16BigEndian(destination[length..], StunSpec.Fingerprint);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(length + 2)..], 4);
        BinaryPrimitives.WriteUInt32BigEndian(destination[(length + 4)..], ComputeFingerprint(destination[..length]));
        return length + 8;
    }

    private static uint ComputeFingerprint(ReadOnlySpan<byte> messageBeforeFingerprint) =>
        Crc32.Compute(messageBeforeFingerprint) ^ StunSpec.FingerprintXor;

    // An address attribute: reserved byte, family, port, address; XORed with cookie and id when a key is given.
    private static bool TryReadAddress(ReadOnlySpan<byte> value, ReadOnlySpan<byte> xorKey, out IPEndPoint? endpoint)
    {
        endpoint = null;
        if (value.Length < 4)
        {
            return false;
        }

        int addressLength = value[1] switch
        {
            StunSpec.FamilyIPv4 => 4,
            StunSpec.FamilyIPv6 => 16,
            _ => -1,
        };
        if (addressLength < 0 || value.Length != 4 + addressLength)
        {
            return false;
        }

        int port = BinaryPrimitives.ReadUInt16BigEndian(value[2..]);
        Span<byte> address = stackalloc byte[16];
        address = address[..addressLength];
        value.Slice(4, addressLength).CopyTo(address);
        if (!xorKey.IsEmpty)
        {
            port ^= (int)(StunSpec.MagicCookie >> 16);
            for (int i = 0; i < addressLength; i++)
            {
                address[i] ^= xorKey[i];
            }
        }

        endpoint = new IPEndPoint(new IPAddress(address), port);
        return true;
    }
}
