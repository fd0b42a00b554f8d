// Benchmark-only: the hand-written DNS codec removed from src/ in issue 10 (DNS on Makaretu.Dns),
// kept unchanged but for its namespace as the reference of DnsAnswerBenchmarks.
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace TunnelMesh.Net.Benchmarks.Dns.Baseline;

/// <summary>One entry of the question section.</summary>
internal readonly record struct DnsQuestion(string Name, ushort Type, ushort Class);

/// <summary>The data of a resource record.</summary>
internal abstract record DnsRecordData;

/// <summary>The address of an A (IPv4) or AAAA (IPv6) record.</summary>
internal sealed record DnsAddressData(IPAddress Address) : DnsRecordData;

/// <summary>The single name of a PTR, CNAME or NS record (compressed when written).</summary>
internal sealed record DnsNameData(string Target) : DnsRecordData;

/// <summary>An SOA record (RFC 1035 §3.3.13); <see cref="Minimum"/> is the negative-caching TTL (RFC 2308).</summary>
internal sealed record DnsSoaData(string PrimaryServer, string Mailbox, uint Serial, uint Refresh, uint Retry, uint Expire, uint Minimum) : DnsRecordData;

/// <summary>The data of any other type, carried as it came (including EDNS options of an OPT record).</summary>
internal sealed record DnsOpaqueData(byte[] Bytes) : DnsRecordData
{
    /// <inheritdoc/>
    public bool Equals(DnsOpaqueData? other) => other is not null && Bytes.AsSpan().SequenceEqual(other.Bytes);

    /// <inheritdoc/>
    public override int GetHashCode() => Bytes.Length;
}

/// <summary>
/// A resource record. For an OPT pseudo-record (EDNS(0), RFC 6891) <see cref="Class"/> is the
/// requestor's UDP payload size and <see cref="Ttl"/> holds the extended rcode, version and flags.
/// </summary>
internal sealed record DnsRecord(string Name, ushort Type, ushort Class, uint Ttl, DnsRecordData Data);

/// <summary>
/// A DNS message (RFC 1035 §4): header, question, answer, authority and additional sections.
/// <see cref="TryParse"/> reads untrusted bytes without throwing; <see cref="TryWrite"/> emits the
/// message with name compression, the header counts taken from the sections.
/// </summary>
internal sealed class DnsMessage
{
    // A section count cannot exceed what the bytes could hold; capacity is only a hint, so cap it.
    private const int MaxInitialCapacity = 16;

    /// <summary>The header; its counts are ignored when writing (the sections' sizes are used).</summary>
    public DnsHeader Header { get; set; }

    public List<DnsQuestion> Questions { get; } = [];

    public List<DnsRecord> Answers { get; } = [];

    public List<DnsRecord> Authorities { get; } = [];

    public List<DnsRecord> Additionals { get; } = [];

    /// <summary>The OPT record of the additional section, if there is exactly one; null when none.</summary>
    public DnsRecord? FindOpt()
    {
        foreach (var r in Additionals)
        {
            if (r.Type == DnsType.Opt)
            {
                return r;
            }
        }

        return null;
    }

    /// <summary>
    /// Parses a whole message. False (never an exception) when the bytes are short, a count promises
    /// more entries than follow, a name is malformed (see <see cref="DnsName.TryRead"/>), an A/AAAA
    /// record has the wrong length, record data does not fill its RDLENGTH exactly, or bytes trail.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> data, [NotNullWhen(true)] out DnsMessage? message)
    {
        message = null;
        if (!DnsHeader.TryRead(data, out var header))
        {
            return false;
        }

        var m = new DnsMessage { Header = header };
        int offset = DnsLimits.HeaderLength;
        m.Questions.Capacity = Math.Min((int)header.QuestionCount, MaxInitialCapacity);
        for (int i = 0; i < header.QuestionCount; i++)
        {
            if (!DnsName.TryRead(data, ref offset, out string name) || offset + 4 > data.Length)
            {
                return false;
            }

            m.Questions.Add(new DnsQuestion(name, BinaryPrimitives.ReadUInt16BigEndian(data[offset..]), BinaryPrimitives.ReadUInt16BigEndian(data[(offset + 2)..])));
            offset += 4;
        }

        if (!TryReadRecords(data, ref offset, header.AnswerCount, m.Answers)
            || !TryReadRecords(data, ref offset, header.AuthorityCount, m.Authorities)
            || !TryReadRecords(data, ref offset, header.AdditionalCount, m.Additionals)
            || offset != data.Length)
        {
            return false;
        }

        message = m;
        return true;
    }

    /// <summary>Writes the message into <paramref name="destination"/>; false when it does not fit. Throws only for names that cannot be encoded (a programming error).</summary>
    public bool TryWrite(Span<byte> destination, out int written)
    {
        var writer = new DnsWriter(destination);
        var header = Header with
        {
            QuestionCount = checked((ushort)Questions.Count),
            AnswerCount = checked((ushort)Answers.Count),
            AuthorityCount = checked((ushort)Authorities.Count),
            AdditionalCount = checked((ushort)Additionals.Count),
        };
        if (writer.Reserve(DnsLimits.HeaderLength, out int at))
        {
            header.Write(destination[at..]);
        }

        foreach (var q in Questions)
        {
            writer.WriteName(q.Name);
            writer.WriteUInt16(q.Type);
            writer.WriteUInt16(q.Class);
        }

        foreach (var section in (ReadOnlySpan<List<DnsRecord>>)[Answers, Authorities, Additionals])
        {
            foreach (var r in section)
            {
                WriteRecord(ref writer, r);
            }
        }

        written = writer.Overflow ? 0 : writer.Position;
        return !writer.Overflow;
    }

    /// <summary>The message as a new array (at most 65535 bytes).</summary>
    /// <exception cref="InvalidOperationException">The message is over 65535 bytes.</exception>
    public byte[] ToArray()
    {
        var buffer = new byte[DnsLimits.MaxMessageLength];
        if (!TryWrite(buffer, out int written))
        {
            throw new InvalidOperationException("The DNS message is longer than 65535 bytes.");
        }

        return buffer[..written];
    }

    private static void WriteRecord(ref DnsWriter writer, DnsRecord r)
    {
        writer.WriteName(r.Name);
        writer.WriteUInt16(r.Type);
        writer.WriteUInt16(r.Class);
        writer.WriteUInt32(r.Ttl);
        if (!writer.Reserve(2, out int lengthAt))
        {
            return;
        }

        int start = writer.Position;
        switch (r.Data)
        {
            case DnsAddressData a:
                Span<byte> bytes = stackalloc byte[16];
                a.Address.TryWriteBytes(bytes, out int n);
                writer.WriteBytes(bytes[..n]);
                break;
            case DnsNameData name:
                writer.WriteName(name.Target);
                break;
            case DnsSoaData soa:
                writer.WriteName(soa.PrimaryServer);
                writer.WriteName(soa.Mailbox);
                writer.WriteUInt32(soa.Serial);
                writer.WriteUInt32(soa.Refresh);
                writer.WriteUInt32(soa.Retry);
                writer.WriteUInt32(soa.Expire);
                writer.WriteUInt32(soa.Minimum);
                break;
            case DnsOpaqueData opaque:
                writer.WriteBytes(opaque.Bytes);
                break;
            default:
                throw new ArgumentException($"Unknown record data {r.Data.GetType().Name}.", nameof(r));
        }

        writer.PatchUInt16(lengthAt, writer.Position - start);
    }

    private static bool TryReadRecords(ReadOnlySpan<byte> data, ref int offset, int count, List<DnsRecord> records)
    {
        records.Capacity = Math.Min(count, MaxInitialCapacity);
        for (int i = 0; i < count; i++)
        {
            if (!DnsName.TryRead(data, ref offset, out string name) || offset + 10 > data.Length)
            {
                return false;
            }

            ushort type = BinaryPrimitives.ReadUInt16BigEndian(data[offset..]);
            ushort cls = BinaryPrimitives.ReadUInt16BigEndian(data[(offset + 2)..]);
            uint ttl = BinaryPrimitives.ReadUInt32BigEndian(data[(offset + 4)..]);
            int length = BinaryPrimitives.ReadUInt16BigEndian(data[(offset + 8)..]);
            offset += 10;
            int end = offset + length;
            if (end > data.Length || !TryReadData(data, offset, end, type, cls, out var recordData))
            {
                return false;
            }

            offset = end;
            records.Add(new DnsRecord(name, type, cls, ttl, recordData));
        }

        return true;
    }

    private static bool TryReadData(ReadOnlySpan<byte> data, int offset, int end, ushort type, ushort cls, [NotNullWhen(true)] out DnsRecordData? result)
    {
        result = null;
        int length = end - offset;
        // Only class IN gives A/AAAA their meaning; names inside data are read from the whole message (compression).
        if (type == DnsType.A && cls == DnsClass.In)
        {
            if (length != 4)
            {
                return false;
            }

            result = new DnsAddressData(new IPAddress(data.Slice(offset, 4)));
            return true;
        }

        if (type == DnsType.Aaaa && cls == DnsClass.In)
        {
            if (length != 16)
            {
                return false;
            }

            result = new DnsAddressData(new IPAddress(data.Slice(offset, 16)));
            return true;
        }

        if (type is DnsType.Ptr or DnsType.Cname or DnsType.Ns)
        {
            int p = offset;
            if (!DnsName.TryRead(data[..end], ref p, out string target) || p != end)
            {
                return false;
            }

            result = new DnsNameData(target);
            return true;
        }

        if (type == DnsType.Soa)
        {
            int p = offset;
            if (!DnsName.TryRead(data[..end], ref p, out string primary) || !DnsName.TryRead(data[..end], ref p, out string mailbox) || p + 20 != end)
            {
                return false;
            }

            result = new DnsSoaData(
                primary,
                mailbox,
                BinaryPrimitives.ReadUInt32BigEndian(data[p..]),
                BinaryPrimitives.ReadUInt32BigEndian(data[(p + 4)..]),
                BinaryPrimitives.ReadUInt32BigEndian(data[(p + 8)..]),
                BinaryPrimitives.ReadUInt32BigEndian(data[(p + 12)..]),
                BinaryPrimitives.ReadUInt32BigEndian(data[(p + 16)..]));
            return true;
        }

        result = new DnsOpaqueData(data.Slice(offset, length).ToArray());
        return true;
    }

    /// <summary>Writes into a span, remembering where each name suffix went for compression; sets <see cref="Overflow"/> instead of writing past the end.</summary>
    private ref struct DnsWriter
    {
        private readonly Span<byte> _buffer;
        private Dictionary<string, int>? _suffixes;

        public DnsWriter(Span<byte> buffer) => _buffer = buffer;

        public int Position { get; private set; }

        public bool Overflow { get; private set; }

        public bool Reserve(int count, out int at)
        {
            at = Position;
            if (Overflow || Position + count > _buffer.Length)
            {
                Overflow = true;
                return false;
            }

            Position += count;
            return true;
        }

        public void WriteUInt16(int value)
        {
            if (Reserve(2, out int at))
            {
                BinaryPrimitives.WriteUInt16BigEndian(_buffer[at..], (ushort)value);
            }
        }

        public void WriteUInt32(uint value)
        {
            if (Reserve(4, out int at))
            {
                BinaryPrimitives.WriteUInt32BigEndian(_buffer[at..], value);
            }
        }

        public void WriteBytes(scoped ReadOnlySpan<byte> bytes)
        {
            if (Reserve(bytes.Length, out int at))
            {
                bytes.CopyTo(_buffer[at..]);
            }
        }

        public readonly void PatchUInt16(int at, int value)
        {
            if (!Overflow)
            {
                BinaryPrimitives.WriteUInt16BigEndian(_buffer[at..], checked((ushort)value));
            }
        }

        /// <summary>Writes a name, replacing its longest suffix already written (same bytes, same case) with a pointer.</summary>
        public void WriteName(string name)
        {
            if (!DnsName.TryGetLabels(name, out var labels))
            {
                throw new ArgumentException($"'{name}' is not a valid DNS name.", nameof(name));
            }

            _suffixes ??= new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < labels.Count; i++)
            {
                string suffix = SuffixKey(labels, i);
                if (_suffixes.TryGetValue(suffix, out int target))
                {
                    WriteUInt16(0xC000 | target);
                    return;
                }

                if (Position <= DnsLimits.MaxPointerOffset && !Overflow)
                {
                    _suffixes[suffix] = Position;
                }

                if (Reserve(1, out int at))
                {
                    _buffer[at] = (byte)labels[i].Length;
                }

                WriteBytes(labels[i]);
            }

            if (Reserve(1, out int rootAt))
            {
                _buffer[rootAt] = 0;
            }
        }

        // Labels joined by a separator that cannot be confused with label content (a length prefix each).
        private static string SuffixKey(List<byte[]> labels, int from)
        {
            var sb = new System.Text.StringBuilder();
            for (int i = from; i < labels.Count; i++)
            {
                sb.Append((char)labels[i].Length);
                foreach (byte b in labels[i])
                {
                    sb.Append((char)b);
                }
            }

            return sb.ToString();
        }
    }
}

/// <summary>Names of the reverse zones (RFC 1035 §3.5 in-addr.arpa, RFC 3596 ip6.arpa).</summary>
internal static class DnsReverseName
{
    /// <summary>The reverse name of an address, e.g. <c>1.0.64.100.in-addr.arpa</c>.</summary>
    public static string For(IPAddress address)
    {
        var bytes = address.GetAddressBytes();
        var sb = new System.Text.StringBuilder();
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            for (int i = 3; i >= 0; i--)
            {
                sb.Append(bytes[i]).Append('.');
            }

            return sb.Append("in-addr.arpa").ToString();
        }

        for (int i = 15; i >= 0; i--)
        {
            sb.Append("0123456789abcdef"[bytes[i] & 0xF]).Append('.').Append("0123456789abcdef"[bytes[i] >> 4]).Append('.');
        }

        return sb.Append("ip6.arpa").ToString();
    }

    /// <summary>
    /// Reads a full reverse name back into its address. False for names that are not under
    /// in-addr.arpa/ip6.arpa, or that name only part of an address (a zone, not a host).
    /// </summary>
    public static bool TryParse(string name, [NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        string n = name.TrimEnd('.').ToLowerInvariant();
        if (n.EndsWith(".in-addr.arpa", StringComparison.Ordinal))
        {
            var parts = n[..^".in-addr.arpa".Length].Split('.');
            if (parts.Length != 4)
            {
                return false;
            }

            Span<byte> bytes = stackalloc byte[4];
            for (int i = 0; i < 4; i++)
            {
                // Canonical decimal only: no sign, no leading zeros.
                string p = parts[3 - i];
                if (p.Length is 0 or > 3 || (p.Length > 1 && p[0] == '0') || !p.All(char.IsAsciiDigit) || int.Parse(p, System.Globalization.CultureInfo.InvariantCulture) > 255)
                {
                    return false;
                }

                bytes[i] = byte.Parse(p, System.Globalization.CultureInfo.InvariantCulture);
            }

            address = new IPAddress(bytes);
            return true;
        }

        if (n.EndsWith(".ip6.arpa", StringComparison.Ordinal))
        {
            var parts = n[..^".ip6.arpa".Length].Split('.');
            if (parts.Length != 32)
            {
                return false;
            }

            Span<byte> bytes = stackalloc byte[16];
            for (int i = 0; i < 32; i++)
            {
                string p = parts[31 - i];
                if (p.Length != 1 || !char.IsAsciiHexDigit(p[0]))
                {
                    return false;
                }

                int nibble = Convert.ToInt32(p, 16);
                bytes[i / 2] |= (byte)(i % 2 == 0 ? nibble << 4 : nibble);
            }

            address = new IPAddress(bytes);
            return true;
        }

        return false;
    }
}
