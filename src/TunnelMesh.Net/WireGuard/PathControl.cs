using System.Buffers.Binary;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// Path messages: WireGuard transport messages whose plaintext starts with a zero byte, which no IP
/// packet does (version 4 or 6 in the top nibble), so a plain WireGuard peer drops them after
/// authentication as a packet with a bad IP version. They are sealed with the session like data, so
/// they are authenticated and replay-protected by WireGuard itself.
/// </summary>
/// <remarks>
/// <code>
/// ping, pong (16 bytes):  00 kind txid(8) 00×6
/// call-me-maybe:          00 03 count 00×13, then count × (kind(1) 00 port(2, big endian) address(16, IPv4-mapped for IPv4))
///                         padded with zeros to a multiple of 16
/// </code>
/// A pong echoes the transaction id of the ping it answers; only a pong whose id matches a ping this
/// node sent (and that came from where the ping went) proves a path.
/// </remarks>
internal static class PathControl
{
    /// <summary>Length of a ping or pong, and of the call-me-maybe header.</summary>
    public const int Length = 16;

    /// <summary>Bytes of one candidate in a call-me-maybe.</summary>
    public const int CandidateSize = 20;

    /// <summary>Most candidates a call-me-maybe carries (the coordinator's limit of published endpoints).</summary>
    public const int MaxCandidates = 16;

    /// <summary>A ping: answer with a pong to its source.</summary>
    public const byte Ping = 1;

    /// <summary>A pong: the answer to a ping.</summary>
    public const byte Pong = 2;

    /// <summary>Call me maybe: the sender's candidates; probe them now (the sender probes at the same time).</summary>
    public const byte CallMeMaybe = 3;

    /// <summary>Largest path message.</summary>
    public const int MaxLength = Length + (MaxCandidates * CandidateSize);

    /// <summary>The kind of a decrypted plaintext, or 0 when it is not a well-formed path message.</summary>
    public static byte KindOf(ReadOnlySpan<byte> plaintext)
    {
        if (plaintext.Length < Length || plaintext[0] != 0)
        {
            return 0;
        }

        return plaintext[1] switch
        {
            Ping or Pong when plaintext.Length == Length => plaintext[1],
            CallMeMaybe when plaintext[2] <= MaxCandidates && plaintext.Length >= Length + (plaintext[2] * CandidateSize) => CallMeMaybe,
            _ => 0,
        };
    }

    /// <summary>Whether a plaintext starts like a path message (a zero byte): never an IP packet, so never delivered as one.</summary>
    public static bool LooksLikePathMessage(ReadOnlySpan<byte> plaintext) => plaintext.Length > 0 && plaintext[0] == 0;

    /// <summary>Writes a ping or pong with its transaction id; returns its length.</summary>
    public static int WriteProbe(Span<byte> destination, byte kind, ulong txid)
    {
        destination[..Length].Clear();
        destination[1] = kind;
        BinaryPrimitives.WriteUInt64BigEndian(destination[2..], txid);
        return Length;
    }

    /// <summary>The transaction id of a ping or pong (<see cref="KindOf"/> said it is one).</summary>
    public static ulong TxidOf(ReadOnlySpan<byte> plaintext) => BinaryPrimitives.ReadUInt64BigEndian(plaintext[2..]);

    /// <summary>Writes a call-me-maybe with up to <see cref="MaxCandidates"/> candidates (relay endpoints skipped); returns its length.</summary>
    public static int WriteCallMeMaybe(Span<byte> destination, IReadOnlyList<PathCandidate> candidates)
    {
        destination[..Length].Clear();
        destination[1] = CallMeMaybe;
        int count = 0;
        foreach (var c in candidates)
        {
            if (count == MaxCandidates)
            {
                break;
            }

            if (!c.Endpoint.IsSet || c.Endpoint.IsRelay)
            {
                continue;
            }

            var entry = destination.Slice(Length + (count * CandidateSize), CandidateSize);
            entry[0] = (byte)c.Kind;
            entry[1] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(entry[2..], c.Endpoint.Port);
            BinaryPrimitives.WriteUInt128BigEndian(entry[4..], c.Endpoint.Address);
            count++;
        }

        destination[2] = (byte)count;
        int length = Length + (count * CandidateSize);
        int padded = (length + 15) & ~15;
        destination[length..padded].Clear();
        return padded;
    }

    /// <summary>
    /// Reads the candidates of a call-me-maybe (<see cref="KindOf"/> said it is one). Entries with no
    /// port, an unspecified address or the relay's pseudo-address are skipped; repeats are dropped.
    /// </summary>
    public static List<PathCandidate> ReadCallMeMaybe(ReadOnlySpan<byte> plaintext)
    {
        int count = plaintext[2];
        var result = new List<PathCandidate>(count);
        for (int i = 0; i < count; i++)
        {
            var entry = plaintext.Slice(Length + (i * CandidateSize), CandidateSize);
            ushort port = BinaryPrimitives.ReadUInt16BigEndian(entry[2..]);
            var endpoint = Endpoint.FromBytes(entry.Slice(4, 16), port);
            if (port == 0 || endpoint.IsRelay || endpoint.Address == UInt128.Zero || (endpoint.IsIPv4 && (uint)endpoint.Address == 0))
            {
                continue;
            }

            bool seen = false;
            foreach (var r in result)
            {
                seen |= r.Endpoint == endpoint;
            }

            if (!seen)
            {
                result.Add(new PathCandidate(endpoint, PathCandidate.KindFromWire(entry[0])));
            }
        }

        return result;
    }
}
