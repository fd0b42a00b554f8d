using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using Makaretu.Dns;

namespace TunnelMesh.Net.Wire.Dns;

/// <summary>
/// DNS messages between bytes and Makaretu.Dns's model (<see cref="Message"/>, <see cref="Question"/>,
/// <see cref="ResourceRecord"/> and its typed records), with the guard Makaretu.Dns lacks in front:
/// untrusted bytes first pass <see cref="DnsMessageShape.Check"/>, then Makaretu.Dns reads them,
/// and anything it throws is caught here, so a hostile message is a false return, never an exception.
/// </summary>
internal static class DnsWire
{
    /// <summary>
    /// Reads a whole message. False (never an exception) when <see cref="DnsMessageShape.Check"/>
    /// refuses it (<paramref name="error"/> says why) or Makaretu.Dns cannot read it
    /// (<paramref name="error"/> is then <see cref="DnsShapeError.None"/>).
    /// </summary>
    /// <param name="data">The message.</param>
    /// <param name="limits">The longest message and the most entries accepted.</param>
    /// <param name="message">The message read.</param>
    /// <param name="error">Why the shape check refused the message, if it did.</param>
    public static bool TryRead(ReadOnlyMemory<byte> data, DnsReadLimits limits, [NotNullWhen(true)] out Message? message, out DnsShapeError error)
    {
        message = null;
        error = DnsMessageShape.Check(data.Span, limits);
        if (error != DnsShapeError.None)
        {
            return false;
        }

        var segment = MemoryMarshal.TryGetArray(data, out var array) ? array : new ArraySegment<byte>(data.ToArray());
        try
        {
            using var stream = new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false);
            var reader = new WireReader(stream);
            var m = new Message();
            m.Read(reader);
            if (reader.Position != segment.Count)
            {
                return false;
            }

            message = m;
            return true;
        }
#pragma warning disable CA1031 // Makaretu.Dns throws many types on bad input (EndOfStream, InvalidData, KeyNotFound, Argument, ...): all mean "malformed"
        catch (Exception ex) when (ex is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            return false;
        }
    }

    /// <summary>The message's bytes (names compressed by Makaretu.Dns's writer).</summary>
    public static byte[] ToArray(Message message) => message.ToByteArray();
}
