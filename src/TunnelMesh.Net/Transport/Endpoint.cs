using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace TunnelMesh.Net.Transport;

/// <summary>
/// A remote endpoint of a transport, as a value (no <see cref="IPEndPoint"/> allocated per packet).
/// For UDP it is an address and port; an IPv4 address is kept as an IPv4-mapped IPv6 address.
/// A relay path ("through the coordinator's relay to peer N") is an address in the IPv6
/// discard-only prefix <c>100::/64</c> (RFC 6666, never a real destination) with port 0, the low
/// 32 bits naming the relay transport's peer slot; see <see cref="ForRelay"/>.
/// </summary>
internal readonly struct Endpoint : IEquatable<Endpoint>
{
    private const ulong V4MappedHigh = 0;
    private const ulong V4MappedLowPrefix = 0x0000_FFFF_0000_0000UL;
    private const ulong RelayHigh = 0x0100_0000_0000_0000UL; // 100::/64, RFC 6666

    private Endpoint(UInt128 address, ushort port)
    {
        Address = address;
        Port = port;
    }

    /// <summary>The 128-bit address in network byte order read as a big-endian integer.</summary>
    public UInt128 Address { get; }

    /// <summary>The port.</summary>
    public ushort Port { get; }

    /// <summary>False for <c>default(Endpoint)</c>, i.e. "no endpoint known".</summary>
    public bool IsSet => Address != UInt128.Zero || Port != 0;

    /// <summary>Whether the address is an IPv4(-mapped) address.</summary>
    public bool IsIPv4 => (ulong)(Address >> 64) == V4MappedHigh && ((ulong)Address & 0xFFFF_FFFF_0000_0000UL) == V4MappedLowPrefix;

    /// <summary>Whether this is a relay path (<see cref="ForRelay"/>) rather than a UDP address.</summary>
    public bool IsRelay => (ulong)(Address >> 64) == RelayHigh && Port == 0;

    /// <summary>The relay transport's peer slot of a relay path (meaningful only when <see cref="IsRelay"/>).</summary>
    public uint RelaySlot => (uint)Address;

    /// <summary>The relay path to the peer in slot <paramref name="slot"/> of the relay transport.</summary>
    public static Endpoint ForRelay(uint slot) => new(new UInt128(RelayHigh, slot), 0);

    /// <summary>An IPv4 endpoint from the address in host order (e.g. 0x7F000001 for 127.0.0.1).</summary>
    public static Endpoint FromIPv4(uint address, ushort port) => new(new UInt128(V4MappedHigh, V4MappedLowPrefix | address), port);

    /// <summary>An endpoint from 4 or 16 address bytes in network order.</summary>
    public static Endpoint FromBytes(ReadOnlySpan<byte> address, ushort port) => address.Length switch
    {
        4 => FromIPv4(BinaryPrimitives.ReadUInt32BigEndian(address), port),
        16 => new Endpoint(BinaryPrimitives.ReadUInt128BigEndian(address), port),
        _ => throw new ArgumentException("An address has 4 or 16 bytes.", nameof(address)),
    };

    /// <summary>Converts from an <see cref="IPEndPoint"/> (allocation-free).</summary>
    public static Endpoint FromIPEndPoint(IPEndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        Span<byte> bytes = stackalloc byte[16];
        endPoint.Address.TryWriteBytes(bytes, out int written);
        return FromBytes(bytes[..written], (ushort)endPoint.Port);
    }

    /// <summary>Reads an endpoint out of a socket address (allocation-free).</summary>
    public static bool TryFromSocketAddress(SocketAddress address, out Endpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(address);
        var buffer = address.Buffer.Span;
        ushort port = BinaryPrimitives.ReadUInt16BigEndian(buffer[2..]);
        if (address.Family == AddressFamily.InterNetwork && address.Size >= 8)
        {
            endpoint = FromBytes(buffer.Slice(4, 4), port);
            return true;
        }

        if (address.Family == AddressFamily.InterNetworkV6 && address.Size >= 24)
        {
            endpoint = FromBytes(buffer.Slice(8, 16), port);
            return true;
        }

        endpoint = default;
        return false;
    }

    /// <summary>Writes the address bytes (4 for IPv4, 16 otherwise) and returns how many were written.</summary>
    public int WriteAddress(Span<byte> destination)
    {
        if (IsIPv4)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)Address);
            return 4;
        }

        BinaryPrimitives.WriteUInt128BigEndian(destination, Address);
        return 16;
    }

    /// <summary>Fills a socket address of the socket's family (IPv4, or IPv6 for a dual-mode socket).</summary>
    public void WriteSocketAddress(SocketAddress destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var buffer = destination.Buffer.Span;
        BinaryPrimitives.WriteUInt16BigEndian(buffer[2..], Port);
        if (destination.Family == AddressFamily.InterNetwork)
        {
            BinaryPrimitives.WriteUInt32BigEndian(buffer[4..], (uint)Address);
        }
        else
        {
            buffer.Slice(4, 4).Clear(); // flow info
            BinaryPrimitives.WriteUInt128BigEndian(buffer[8..], Address);
            buffer.Slice(24, 4).Clear(); // scope id
        }
    }

    /// <summary>Converts to an <see cref="IPEndPoint"/> (allocates; not for the data path).</summary>
    public IPEndPoint ToIPEndPoint()
    {
        Span<byte> bytes = stackalloc byte[16];
        int n = WriteAddress(bytes);
        return new IPEndPoint(new IPAddress(bytes[..n]), Port);
    }

    /// <inheritdoc/>
    public bool Equals(Endpoint other) => Address == other.Address && Port == other.Port;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Endpoint other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Address, Port);

    /// <inheritdoc/>
    public override string ToString() => !IsSet ? "(none)" : IsRelay ? $"relay#{RelaySlot}" : ToIPEndPoint().ToString();

    /// <summary>Equality.</summary>
    public static bool operator ==(Endpoint left, Endpoint right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(Endpoint left, Endpoint right) => !left.Equals(right);
}
