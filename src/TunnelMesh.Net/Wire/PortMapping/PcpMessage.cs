using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;

namespace TunnelMesh.Net.Wire.PortMapping;

/// <summary>Constants of the Port Control Protocol (RFC 6887) that the MAP exchange uses.</summary>
internal static class PcpSpec
{
    public const byte Version = 2;

    public const byte OpAnnounce = 0;
    public const byte OpMap = 1;

    /// <summary>The R bit: set in the opcode byte of a response.</summary>
    public const byte ResponseBit = 0x80;

    public const int HeaderLength = 24;
    public const int MapBodyLength = 36;
    public const int MapLength = HeaderLength + MapBodyLength;

    /// <summary>RFC 6887 §7: a PCP message is at most 1100 bytes and a multiple of 4.</summary>
    public const int MaxLength = 1100;

    public const byte ProtocolUdp = 17;
    public const byte ProtocolTcp = 6;

    public const byte ResultSuccess = 0;
    public const byte ResultUnsupportedVersion = 1;
    public const byte ResultNotAuthorized = 2;
    public const byte ResultMalformedRequest = 3;
    public const byte ResultUnsupportedOpcode = 4;
    public const byte ResultNetworkFailure = 7;
    public const byte ResultNoResources = 8;
    public const byte ResultUnsupportedProtocol = 9;
    public const byte ResultCannotProvideExternal = 11;
    public const byte ResultAddressMismatch = 12;
}

/// <summary>The 96-bit mapping nonce of a PCP MAP request (RFC 6887 §11.1); a response must echo it.</summary>
internal readonly record struct PcpNonce(uint High, ulong Low)
{
    public static PcpNonce NewRandom()
    {
        Span<byte> bytes = stackalloc byte[12];
        RandomNumberGenerator.Fill(bytes);
        return Read(bytes);
    }

    public static PcpNonce Read(ReadOnlySpan<byte> bytes) =>
        new(BinaryPrimitives.ReadUInt32BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[4..]));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, High);
        BinaryPrimitives.WriteUInt64BigEndian(destination[4..], Low);
    }
}

/// <summary>
/// A parsed PCP response: the common header (RFC 6887 §7.2) and, for a MAP response that carries
/// one, the MAP body (§11.1). <see cref="HasMapBody"/> is false for ANNOUNCE and for an error
/// answered with the header alone.
/// </summary>
internal readonly record struct PcpResponse(
    byte Opcode,
    byte Result,
    uint Lifetime,
    uint Epoch,
    bool HasMapBody,
    PcpNonce Nonce,
    byte Protocol,
    ushort InternalPort,
    ushort ExternalPort,
    IPAddress? ExternalAddress);

/// <summary>Writes PCP requests and parses PCP responses; lengths are checked exactly.</summary>
internal static class PcpMessage
{
    /// <summary>Writes an ANNOUNCE request (header only): a cheap "is there a PCP server?" probe. Returns 24.</summary>
    public static int WriteAnnounceRequest(Span<byte> destination, IPAddress clientAddress)
    {
        WriteRequestHeader(destination, PcpSpec.OpAnnounce, 0, clientAddress);
        return PcpSpec.HeaderLength;
    }

    /// <summary>
    /// Writes a MAP request (RFC 6887 §11.1) for <paramref name="internalPort"/> of
    /// <paramref name="clientAddress"/> (the source address the server sees); a lifetime of 0
    /// deletes the mapping. A null <paramref name="suggestedExternalAddress"/> asks for any IPv4 address.
    /// Returns 60.
    /// </summary>
    public static int WriteMapRequest(
        Span<byte> destination,
        uint lifetime,
        IPAddress clientAddress,
        PcpNonce nonce,
        byte protocol,
        ushort internalPort,
        ushort suggestedExternalPort,
        IPAddress? suggestedExternalAddress)
    {
        var d = destination[..PcpSpec.MapLength];
        WriteRequestHeader(d, PcpSpec.OpMap, lifetime, clientAddress);
        var body = d[PcpSpec.HeaderLength..];
        nonce.Write(body);
        body[12] = protocol;
        body[13] = body[14] = body[15] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(body[16..], internalPort);
        BinaryPrimitives.WriteUInt16BigEndian(body[18..], suggestedExternalPort);
        WriteAddress(body[20..36], suggestedExternalAddress ?? IPAddress.Any);
        return PcpSpec.MapLength;
    }

    /// <summary>
    /// Parses a response. False unless: version 2, the R bit set, a length from 24 to 1100 that is a
    /// multiple of 4, and for MAP either the full 60-byte MAP layout (then options may follow, each
    /// well-formed within the datagram) or, for an error result, the header alone.
    /// </summary>
    public static bool TryParseResponse(ReadOnlySpan<byte> datagram, out PcpResponse response)
    {
        response = default;
        if (datagram.Length < PcpSpec.HeaderLength || datagram.Length > PcpSpec.MaxLength || datagram.Length % 4 != 0
            || datagram[0] != PcpSpec.Version || (datagram[1] & PcpSpec.ResponseBit) == 0)
        {
            return false;
        }

        byte opcode = (byte)(datagram[1] & ~PcpSpec.ResponseBit);
        byte result = datagram[3];
        uint lifetime = BinaryPrimitives.ReadUInt32BigEndian(datagram[4..]);
        uint epoch = BinaryPrimitives.ReadUInt32BigEndian(datagram[8..]);
        if (opcode != PcpSpec.OpMap)
        {
            if (opcode != PcpSpec.OpAnnounce && result == PcpSpec.ResultSuccess)
            {
                return false; // a success for an opcode this client never sends
            }

            response = new PcpResponse(opcode, result, lifetime, epoch, false, default, 0, 0, 0, null);
            return ValidOptions(datagram[PcpSpec.HeaderLength..]);
        }

        if (datagram.Length < PcpSpec.MapLength)
        {
            if (datagram.Length != PcpSpec.HeaderLength || result == PcpSpec.ResultSuccess)
            {
                return false;
            }

            response = new PcpResponse(opcode, result, lifetime, epoch, false, default, 0, 0, 0, null);
            return true;
        }

        var body = datagram.Slice(PcpSpec.HeaderLength, PcpSpec.MapBodyLength);
        response = new PcpResponse(
            opcode,
            result,
            lifetime,
            epoch,
            true,
            PcpNonce.Read(body),
            body[12],
            BinaryPrimitives.ReadUInt16BigEndian(body[16..]),
            BinaryPrimitives.ReadUInt16BigEndian(body[18..]),
            ReadAddress(body[20..36]));
        return ValidOptions(datagram[PcpSpec.MapLength..]);
    }

    /// <summary>Writes a MAP response (the server side: tests and scripted responders). Returns 60.</summary>
    public static int WriteMapResponse(Span<byte> destination, in PcpResponse response)
    {
        var d = destination[..PcpSpec.MapLength];
        d.Clear();
        d[0] = PcpSpec.Version;
        d[1] = (byte)(PcpSpec.OpMap | PcpSpec.ResponseBit);
        d[3] = response.Result;
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], response.Lifetime);
        BinaryPrimitives.WriteUInt32BigEndian(d[8..], response.Epoch);
        var body = d[PcpSpec.HeaderLength..];
        response.Nonce.Write(body);
        body[12] = response.Protocol;
        BinaryPrimitives.WriteUInt16BigEndian(body[16..], response.InternalPort);
        BinaryPrimitives.WriteUInt16BigEndian(body[18..], response.ExternalPort);
        WriteAddress(body[20..36], response.ExternalAddress ?? IPAddress.Any);
        return PcpSpec.MapLength;
    }

    /// <summary>An address in PCP's 16-byte form: IPv6 as is, IPv4 as ::ffff:a.b.c.d.</summary>
    public static void WriteAddress(Span<byte> destination, IPAddress address)
    {
        var v6 = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? address.MapToIPv6() : address;
        if (!v6.TryWriteBytes(destination, out int written) || written != 16)
        {
            throw new ArgumentException("not an IP address of 4 or 16 bytes", nameof(address));
        }
    }

    private static IPAddress ReadAddress(ReadOnlySpan<byte> bytes)
    {
        var address = new IPAddress(bytes);
        return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }

    private static void WriteRequestHeader(Span<byte> d, byte opcode, uint lifetime, IPAddress clientAddress)
    {
        d[0] = PcpSpec.Version;
        d[1] = opcode;
        d[2] = d[3] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], lifetime);
        WriteAddress(d[8..24], clientAddress);
    }

    /// <summary>Options (RFC 6887 §7.3): code, reserved, 16-bit length, data padded to 4 bytes; each must fit.</summary>
    private static bool ValidOptions(ReadOnlySpan<byte> options)
    {
        while (!options.IsEmpty)
        {
            if (options.Length < 4)
            {
                return false;
            }

            int length = BinaryPrimitives.ReadUInt16BigEndian(options[2..]);
            int padded = 4 + ((length + 3) & ~3);
            if (padded > options.Length)
            {
                return false;
            }

            options = options[padded..];
        }

        return true;
    }
}
