using System.Buffers.Binary;

namespace TunnelMesh.Net.Wire.PortMapping;

/// <summary>Constants of NAT-PMP (RFC 6886).</summary>
internal static class NatPmpSpec
{
    /// <summary>The UDP port a NAT-PMP (and PCP) server listens on.</summary>
    public const int ServerPort = 5351;

    public const byte Version = 0;

    public const byte OpExternalAddress = 0;
    public const byte OpMapUdp = 1;
    public const byte OpMapTcp = 2;

    /// <summary>Set in the opcode of every response (response opcode = request opcode + 128).</summary>
    public const byte ResponseBit = 128;

    public const int ExternalAddressRequestLength = 2;
    public const int MapRequestLength = 12;

    /// <summary>A response with only version, opcode, result and epoch (RFC 6886 §3.5: unsupported version or opcode).</summary>
    public const int ErrorResponseLength = 8;
    public const int ExternalAddressResponseLength = 12;
    public const int MapResponseLength = 16;

    public const ushort ResultSuccess = 0;
    public const ushort ResultUnsupportedVersion = 1;
    public const ushort ResultNotAuthorized = 2;
    public const ushort ResultNetworkFailure = 3;
    public const ushort ResultOutOfResources = 4;
    public const ushort ResultUnsupportedOpcode = 5;
}

/// <summary>
/// A parsed NAT-PMP response (RFC 6886 §3.2 and §3.3). <see cref="ExternalAddress"/> is set for the
/// external-address response (opcode 128), the ports and lifetime for a mapping response (129, 130);
/// an error response that carries only the 8-byte header leaves them zero.
/// </summary>
internal readonly record struct NatPmpResponse(
    byte Opcode,
    ushort Result,
    uint Epoch,
    uint ExternalAddress,
    ushort InternalPort,
    ushort ExternalPort,
    uint Lifetime)
{
    /// <summary>The request opcode this answers (the response opcode without its top bit).</summary>
    public byte RequestOpcode => (byte)(Opcode & ~NatPmpSpec.ResponseBit);
}

/// <summary>Writes NAT-PMP requests and parses NAT-PMP responses; every length is checked exactly.</summary>
internal static class NatPmpMessage
{
    /// <summary>Writes the external-address request (version 0, opcode 0); returns its length, 2.</summary>
    public static int WriteExternalAddressRequest(Span<byte> destination)
    {
        destination[0] = NatPmpSpec.Version;
        destination[1] = NatPmpSpec.OpExternalAddress;
        return NatPmpSpec.ExternalAddressRequestLength;
    }

    /// <summary>
    /// Writes a mapping request (RFC 6886 §3.3): <paramref name="opcode"/> 1 (UDP) or 2 (TCP); a
    /// lifetime of 0 deletes the mapping. Returns its length, 12.
    /// </summary>
    public static int WriteMapRequest(Span<byte> destination, byte opcode, ushort internalPort, ushort suggestedExternalPort, uint lifetime)
    {
        var d = destination[..NatPmpSpec.MapRequestLength];
        d[0] = NatPmpSpec.Version;
        d[1] = opcode;
        BinaryPrimitives.WriteUInt16BigEndian(d[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(d[4..], internalPort);
        BinaryPrimitives.WriteUInt16BigEndian(d[6..], suggestedExternalPort);
        BinaryPrimitives.WriteUInt32BigEndian(d[8..], lifetime);
        return NatPmpSpec.MapRequestLength;
    }

    /// <summary>
    /// Parses a response. False for anything that is not exactly one: another version, a request
    /// opcode (top bit clear), an unknown opcode, or a length other than the one its opcode has
    /// (an error result may also come as the 8-byte header alone).
    /// </summary>
    public static bool TryParseResponse(ReadOnlySpan<byte> datagram, out NatPmpResponse response)
    {
        response = default;
        if (datagram.Length < NatPmpSpec.ErrorResponseLength || datagram[0] != NatPmpSpec.Version || (datagram[1] & NatPmpSpec.ResponseBit) == 0)
        {
            return false;
        }

        byte opcode = datagram[1];
        ushort result = BinaryPrimitives.ReadUInt16BigEndian(datagram[2..]);
        uint epoch = BinaryPrimitives.ReadUInt32BigEndian(datagram[4..]);
        int full = (opcode & ~NatPmpSpec.ResponseBit) switch
        {
            NatPmpSpec.OpExternalAddress => NatPmpSpec.ExternalAddressResponseLength,
            NatPmpSpec.OpMapUdp or NatPmpSpec.OpMapTcp => NatPmpSpec.MapResponseLength,
            _ => -1,
        };

        if (datagram.Length == NatPmpSpec.ErrorResponseLength && result != NatPmpSpec.ResultSuccess)
        {
            // RFC 6886 §3.5: "unsupported version" and "unsupported opcode" answers may be the header alone,
            // and an unsupported opcode is echoed back, so any opcode is possible here.
            response = new NatPmpResponse(opcode, result, epoch, 0, 0, 0, 0);
            return true;
        }

        if (full < 0 || datagram.Length != full)
        {
            return false;
        }

        response = full == NatPmpSpec.ExternalAddressResponseLength
            ? new NatPmpResponse(opcode, result, epoch, BinaryPrimitives.ReadUInt32BigEndian(datagram[8..]), 0, 0, 0)
            : new NatPmpResponse(
                opcode,
                result,
                epoch,
                0,
                BinaryPrimitives.ReadUInt16BigEndian(datagram[8..]),
                BinaryPrimitives.ReadUInt16BigEndian(datagram[10..]),
                BinaryPrimitives.ReadUInt32BigEndian(datagram[12..]));
        return true;
    }

    /// <summary>Writes a response (the server side: tests and scripted responders). Returns its length.</summary>
    public static int WriteResponse(Span<byte> destination, in NatPmpResponse response)
    {
        destination[0] = NatPmpSpec.Version;
        destination[1] = response.Opcode;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], response.Result);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], response.Epoch);
        switch (response.RequestOpcode)
        {
            case NatPmpSpec.OpExternalAddress:
                BinaryPrimitives.WriteUInt32BigEndian(destination[8..], response.ExternalAddress);
                return NatPmpSpec.ExternalAddressResponseLength;
            case NatPmpSpec.OpMapUdp or NatPmpSpec.OpMapTcp:
                BinaryPrimitives.WriteUInt16BigEndian(destination[8..], response.InternalPort);
                BinaryPrimitives.WriteUInt16BigEndian(destination[10..], response.ExternalPort);
                BinaryPrimitives.WriteUInt32BigEndian(destination[12..], response.Lifetime);
                return NatPmpSpec.MapResponseLength;
            default:
                return NatPmpSpec.ErrorResponseLength;
        }
    }
}
