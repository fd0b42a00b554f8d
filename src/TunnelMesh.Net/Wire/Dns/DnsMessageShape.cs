using System.Buffers.Binary;
using System.Text.Unicode;

namespace TunnelMesh.Net.Wire.Dns;

/// <summary>
/// A walk over a DNS message's structure, done before Makaretu.Dns reads it. This is the part of the
/// former codec that stays, because Makaretu.Dns 2.0.1 lacks it: its reader trusts the message.
/// </summary>
/// <remarks>
/// <para>What Makaretu.Dns does with hostile bytes, and what this check adds:</para>
/// <list type="bullet">
/// <item>It reads names recursively, one call per label, each level copying the labels below it, with
/// no limit on the name's length (RFC 1035 caps it at 255 bytes): a name of 30,000 one-byte labels
/// (one 60 KB TCP query) makes it allocate 3.6 GB; and a chain of names each one label longer than a name it points to makes its
/// expanded names grow with every record (quadratic memory). Here every question and owner name is
/// checked (label length ≤ 63, expanded name ≤ 255 bytes, no reserved label types 0x40/0x80), and
/// the caller's <see cref="DnsReadLimits"/> cap the length and the counts, which also bounds the
/// names inside record data, whose layout this check does not know per type.</item>
/// <item>It follows a compression pointer only to a name it has already read (a dictionary lookup),
/// so a pointer loop is impossible there; a pointer anywhere else throws. Here pointers must point
/// strictly backwards and below every earlier target of the same name, so a loop fails here first.</item>
/// <item>It decodes labels as UTF-8 and encodes them back as UTF-8, so a label that is not UTF-8 would
/// not be echoed byte for byte (and can grow past 63 bytes, which its writer refuses); such names
/// are refused here.</item>
/// <item>It ignores bytes after the last record; here they make the message malformed, as before.</item>
/// </list>
/// <para>Record data is bounds-checked (RDLENGTH within the message), and the names in it are
/// checked like any other for the types whose data Makaretu.Dns reads names from (NS, CNAME, SOA,
/// PTR, MX, RP, AFSDB, SRV, DNAME, RRSIG, NSEC, TKEY, TSIG): within the 4096-byte query cap one name
/// of 2000 one-byte labels would still cost its reader 17 MB. The rest of
/// the data is Makaretu.Dns's to read, and whatever it throws is caught by <see cref="DnsWire.TryRead"/>.</para>
/// </remarks>
internal static class DnsMessageShape
{
    /// <summary>The longest label.</summary>
    public const int MaxLabelLength = 63;

    /// <summary>The longest name on the wire, length octets and the root label included.</summary>
    public const int MaxNameLength = 255;

    /// <summary>Checks the message's structure without allocating; <see cref="DnsShapeError.None"/> when it may be handed to Makaretu.Dns.</summary>
    public static DnsShapeError Check(ReadOnlySpan<byte> message, DnsReadLimits limits)
    {
        if (message.Length < DnsHeader.Length)
        {
            return DnsShapeError.NoHeader;
        }

        if (message.Length > limits.MaxLength)
        {
            return DnsShapeError.TooLong;
        }

        int questions = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        int records = BinaryPrimitives.ReadUInt16BigEndian(message[6..]) + BinaryPrimitives.ReadUInt16BigEndian(message[8..]) + BinaryPrimitives.ReadUInt16BigEndian(message[10..]);
        if (questions > limits.MaxQuestions || records > limits.MaxRecords)
        {
            return DnsShapeError.TooManyEntries;
        }
        int offset = DnsHeader.Length;
        for (int i = 0; i < questions; i++)
        {
            var error = SkipName(message, ref offset);
            if (error != DnsShapeError.None)
            {
                return error;
            }

            offset += 4;
            if (offset > message.Length)
            {
                return DnsShapeError.Truncated;
            }
        }

        for (int i = 0; i < records; i++)
        {
            var error = SkipName(message, ref offset);
            if (error != DnsShapeError.None)
            {
                return error;
            }

            if (offset + 10 > message.Length)
            {
                return DnsShapeError.Truncated;
            }

            int type = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
            int dataStart = offset + 10;
            offset = dataStart + BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
            if (offset > message.Length)
            {
                return DnsShapeError.Truncated;
            }

            error = CheckNamesInData(message[..offset], dataStart, type);
            if (error != DnsShapeError.None)
            {
                return error;
            }
        }

        return offset == message.Length ? DnsShapeError.None : DnsShapeError.TrailingBytes;
    }

    /// <summary>
    /// Checks the name at <paramref name="offset"/> and moves <paramref name="offset"/> past it (past
    /// the first pointer when compressed). False for a name that runs off the end, is over 255
    /// bytes expanded, has a label over 63 bytes or not UTF-8, uses label type 0x40 or 0x80, or
    /// points forward, at itself or in a loop.
    /// </summary>
    public static bool TrySkipName(ReadOnlySpan<byte> message, ref int offset) => SkipName(message, ref offset) == DnsShapeError.None;

    /// <summary>
    /// Checks the names Makaretu.Dns 2.0.1 reads inside the data of a record of <paramref name="type"/>
    /// (its registered types that hold names, at the offsets its readers take them from), so that no
    /// name it reads anywhere escapes the limits above. <paramref name="record"/> ends where the data ends.
    /// </summary>
    private static DnsShapeError CheckNamesInData(ReadOnlySpan<byte> record, int dataStart, int type)
    {
        (int at, int count) = type switch
        {
            2 or 5 or 12 or 39 or 47 or 249 or 250 => (0, 1), // NS, CNAME, PTR, DNAME, NSEC, TKEY and TSIG (algorithm)
            6 or 17 => (0, 2), // SOA (primary, mailbox), RP (mailbox, text domain)
            15 or 18 => (2, 1), // MX, AFSDB: after a 16-bit preference or subtype
            33 => (6, 1), // SRV: after priority, weight and port
            46 => (18, 1), // RRSIG: the signer's name
            _ => (0, 0),
        };
        int offset = dataStart + at;
        for (int i = 0; i < count; i++)
        {
            var error = SkipName(record, ref offset);
            if (error != DnsShapeError.None)
            {
                return error;
            }
        }

        return DnsShapeError.None;
    }

    private static DnsShapeError SkipName(ReadOnlySpan<byte> message, ref int offset)
    {
        int position = offset;
        int lowestTarget = offset; // each pointer must point below this, and lowers it
        int wireLength = 1;
        int end = -1;
        while (true)
        {
            if (position >= message.Length)
            {
                return DnsShapeError.Truncated;
            }

            byte b = message[position];
            if ((b & 0xC0) == 0xC0)
            {
                if (position + 1 >= message.Length)
                {
                    return DnsShapeError.Truncated;
                }

                int target = ((b & 0x3F) << 8) | message[position + 1];
                if (target >= lowestTarget)
                {
                    return DnsShapeError.BadName; // forward, self or loop
                }

                if (end < 0)
                {
                    end = position + 2;
                }

                lowestTarget = target;
                position = target;
                continue;
            }

            if ((b & 0xC0) != 0)
            {
                return DnsShapeError.BadName; // 0x40 and 0x80: extended/reserved label types
            }

            if (b == 0)
            {
                offset = end < 0 ? position + 1 : end;
                return DnsShapeError.None;
            }

            wireLength += 1 + b;
            if (wireLength > MaxNameLength)
            {
                return DnsShapeError.BadName;
            }

            if (position + 1 + b > message.Length)
            {
                return DnsShapeError.Truncated;
            }

            if (!Utf8.IsValid(message.Slice(position + 1, b)))
            {
                return DnsShapeError.BadName;
            }

            position += 1 + b;
        }
    }
}
