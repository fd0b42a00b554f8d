using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Makaretu.Dns;
using TunnelMesh.Net.Wire.Dns;

namespace TunnelMesh.Net.Tests.Wire.Dns;

/// <summary>
/// DNS messages through Makaretu.Dns behind our boundary (<see cref="DnsWire"/>, <see cref="DnsMessageShape"/>):
/// round trips, real bytes from dig, and hostile input that must come back as a false, never an
/// exception, a loop or a large allocation.
/// </summary>
public class DnsWireTests
{
    // A query `dig @127.0.0.1 laptop.tunnelmesh AAAA` (BIND 9) sent, captured from a UDP socket: RD and AD, EDNS(0) with a cookie.
    private static readonly byte[] DigQuery = Convert.FromHexString(
        "622301200001000000000001066c6170746f700a74756e6e656c6d65736800001c000100002904d000000000000c000a0008931e7c0a4af03cca");

    private static readonly Gen<char> LabelChar = Gen.Frequency(
        (20, Gen.Elements("abcdefghijklmnopqrstuvwxyz0123456789-".ToCharArray())),
        (2, Gen.Elements('A', 'Z')),
        (1, Gen.Elements('\\', ' ', '"', 'é', '_')));

    private static readonly Gen<string> Label = Gen.Choose(1, 12).SelectMany(n => Gen.ArrayOf(LabelChar, n)).Select(c => new string(c));

    // Names from a few shared suffixes, so that compression has something to find.
    private static readonly Gen<DomainName> Name = Gen.Frequency(
        (1, Gen.Constant(new DomainName(Array.Empty<string>()))),
        (6, from head in Gen.Choose(0, 3).SelectMany(n => Gen.ListOf(Label, n))
            from tail in Gen.Elements<string[]>(["tunnelmesh"], ["example", "org"], ["in-addr", "arpa"], [])
            select new DomainName([.. head, .. tail])));

    private static readonly Gen<ResourceRecord> Record =
        from name in Name
        from ttl in WireGen.UInt
        from kind in Gen.Choose(0, 4)
        from bytes in Gen.ArrayOf(WireGen.Byte, 16)
        from target in Name
        from serial in WireGen.UInt
        from opaque in WireGen.Bytes(40)
        select Build(kind, name, TimeSpan.FromSeconds(ttl), bytes, target, serial, opaque);

    private static readonly Gen<Message> MessageGen =
        from id in WireGen.UShort
        from flags in WireGen.UShort
        from questions in Gen.Choose(0, 2).SelectMany(n => Gen.ListOf(from n2 in Name from t in WireGen.UShort from c in WireGen.UShort select new Question { Name = n2, Type = (DnsType)t, Class = (DnsClass)c }, n))
        from answers in Gen.Choose(0, 4).SelectMany(n => Gen.ListOf(Record, n))
        from authorities in Gen.Choose(0, 2).SelectMany(n => Gen.ListOf(Record, n))
        from additionals in Gen.Choose(0, 2).SelectMany(n => Gen.ListOf(Record, n))
        select Build(id, flags, questions, answers, authorities, additionals);

    private static ResourceRecord Build(int kind, DomainName name, TimeSpan ttl, byte[] bytes, DomainName target, uint serial, byte[] opaque) => kind switch
    {
        0 => new ARecord { Name = name, TTL = ttl, Address = new IPAddress(bytes[..4]) },
        1 => new AAAARecord { Name = name, TTL = ttl, Address = new IPAddress(bytes) },
        2 => new PTRRecord { Name = name, TTL = ttl, DomainName = target },
        3 => new SOARecord
        {
            Name = name, TTL = ttl, PrimaryName = target, Mailbox = new DomainName(["hostmaster", .. name.Labels]),
            SerialNumber = serial, Refresh = TimeSpan.FromSeconds(3600), Retry = TimeSpan.FromSeconds(600), Expire = TimeSpan.FromSeconds(serial ^ 5), Minimum = TimeSpan.FromSeconds(60),
        },
        _ => new UnknownRecord { Name = name, Type = (DnsType)99, Class = DnsClass.CH, TTL = ttl, Data = opaque },
    };

    // The flag word is set field by field, as Makaretu.Dns's model holds it (Z is one bit there).
    private static Message Build(ushort id, ushort flags, IEnumerable<Question> q, IEnumerable<ResourceRecord> an, IEnumerable<ResourceRecord> ns, IEnumerable<ResourceRecord> ar)
    {
        var m = new Message
        {
            Id = id, QR = (flags & 0x8000) != 0, Opcode = (MessageOperation)((flags >> 11) & 0xF), AA = (flags & 0x400) != 0, TC = (flags & 0x200) != 0,
            RD = (flags & 0x100) != 0, RA = (flags & 0x80) != 0, Z = (flags >> 6) & 1, AD = (flags & 0x20) != 0, CD = (flags & 0x10) != 0, Status = (MessageStatus)(flags & 0xF),
        };
        m.Questions.AddRange(q);
        m.Answers.AddRange(an);
        m.AuthorityRecords.AddRange(ns);
        m.AdditionalRecords.AddRange(ar);
        return m;
    }

    private static bool TryRead(byte[] bytes, out Message? message) => DnsWire.TryRead(bytes, DnsReadLimits.Any, out message, out _);

    // Makaretu.Dns compares names without case and records without TTL; the wire bytes and the names' text do both.
    private static bool SameContent(Message a, Message b) =>
        DnsWire.ToArray(a).AsSpan().SequenceEqual(DnsWire.ToArray(b))
        && a.Questions.Select(q => (q.Name.ToString(), q.Type, q.Class)).SequenceEqual(b.Questions.Select(q => (q.Name.ToString(), q.Type, q.Class)))
        && a.Answers.Concat(a.AuthorityRecords).Concat(a.AdditionalRecords).Select(r => (r.Name.ToString(), r.TTL))
            .SequenceEqual(b.Answers.Concat(b.AuthorityRecords).Concat(b.AdditionalRecords).Select(r => (r.Name.ToString(), r.TTL)))
        && a.Answers.SequenceEqual(b.Answers) && a.AuthorityRecords.SequenceEqual(b.AuthorityRecords) && a.AdditionalRecords.SequenceEqual(b.AdditionalRecords);

    [Property(MaxTest = 300)]
    public Property Read_of_write_is_identity_and_writing_again_gives_the_same_bytes() =>
        Prop.ForAll(MessageGen.ToArbitrary(), m =>
        {
            var bytes = DnsWire.ToArray(m);
            return TryRead(bytes, out var parsed)
                && SameContent(m, parsed!)
                && DnsWire.ToArray(parsed!).AsSpan().SequenceEqual(bytes);
        });

    [Fact]
    public void Reads_a_query_dig_sent_and_writes_it_back_byte_for_byte()
    {
        Assert.True(DnsWire.TryRead(DigQuery, DnsReadLimits.Query, out var m, out var error), error.ToString());
        Assert.Equal(0x6223, m.Id);
        Assert.False(m.QR);
        Assert.True(m.RD);
        Assert.True(m.AD);
        Assert.True(DnsHeader.TryRead(DigQuery, out var header));
        Assert.Equal(0, header.Opcode);
        var q = Assert.Single(m.Questions);
        Assert.Equal(("laptop.tunnelmesh", DnsType.AAAA, DnsClass.IN), (q.Name.ToString(), q.Type, q.Class));
        var opt = Assert.IsType<OPTRecord>(Assert.Single(m.AdditionalRecords));
        Assert.Empty(opt.Name.Labels);
        Assert.Equal(1232, opt.RequestorPayloadSize); // the UDP payload size dig offers
        Assert.Equal(0, opt.Version);
        var cookie = Assert.Single(opt.Options); // one COOKIE option (code 10, 8 bytes)
        Assert.Equal(10, (int)cookie.Type);
        Assert.Equal(DigQuery, DnsWire.ToArray(m));
    }

    [Fact]
    public void Repeated_names_are_compressed_to_a_pointer_at_their_first_occurrence()
    {
        var m = Build(7, 0x8400, [new Question { Name = "laptop.tunnelmesh", Type = DnsType.A, Class = DnsClass.IN }],
            [new ARecord { Name = "laptop.tunnelmesh", TTL = TimeSpan.FromSeconds(60), Address = IPAddress.Parse("100.64.0.1") }],
            [new SOARecord { Name = "tunnelmesh", TTL = TimeSpan.FromSeconds(60), PrimaryName = "tunnelmesh", Mailbox = "hostmaster.tunnelmesh", SerialNumber = 1 }], []);
        var bytes = DnsWire.ToArray(m);
        int question = 12 + 19 + 4;
        Assert.Equal(new byte[] { 0xC0, 12 }, bytes[question..(question + 2)]); // the answer's owner: a pointer to offset 12
        // The SOA's owner points into the question's name (offset 12 + 7 = "tunnelmesh").
        int soa = question + 2 + 10 + 4;
        Assert.Equal(new byte[] { 0xC0, 19 }, bytes[soa..(soa + 2)]);
        Assert.True(TryRead(bytes, out var parsed));
        Assert.True(SameContent(m, parsed!));
    }

    [Fact]
    public void Every_truncation_of_a_valid_message_is_rejected_without_throwing()
    {
        var m = Build(9, 0x8180, [new Question { Name = "a.tunnelmesh", Type = DnsType.ANY, Class = DnsClass.IN }],
            [new ARecord { Name = "a.tunnelmesh", TTL = TimeSpan.FromSeconds(60), Address = IPAddress.Parse("100.64.0.9") },
             new AAAARecord { Name = "a.tunnelmesh", TTL = TimeSpan.FromSeconds(60), Address = IPAddress.Parse("fd7a::9") }],
            [new SOARecord { Name = "tunnelmesh", PrimaryName = "tunnelmesh", Mailbox = "hostmaster.tunnelmesh", SerialNumber = 1 }], []);
        var bytes = DnsWire.ToArray(m);
        for (int n = 0; n < bytes.Length; n++)
        {
            Assert.False(TryRead(bytes[..n], out _), $"a message cut to {n} of {bytes.Length} bytes was accepted");
        }

        Assert.True(TryRead(bytes, out _));
        Assert.False(TryRead([.. bytes, 0], out _)); // trailing garbage
    }

    [Theory]
    [InlineData("0001 0000 0001 0000 0000 0000 c00c 0001 0001", "a pointer to itself")]
    [InlineData("0001 0000 0001 0000 0000 0000 c00e 0001 0001", "a pointer forward")]
    [InlineData("0001 0000 0001 0000 0000 0000 0161 c00e 0162 c00c 0001 0001", "two pointers pointing at each other")]
    [InlineData("0001 0000 0001 0000 0000 0000 0161 c00c 0001 0001", "a label followed by a pointer back to it")]
    [InlineData("0001 0000 0001 0000 0000 0000 4161 00 0001 0001", "an extended label type (0x40)")]
    [InlineData("0001 0000 0001 0000 0000 0000 8161 00 0001 0001", "a reserved label type (0x80)")]
    [InlineData("0001 0000 0001 0000 0000 0000 0561 00 0001 0001", "a label longer than the rest of the message")]
    [InlineData("0001 0000 0001 0000 0000 0000 02c3 28 00 0001 0001", "a label that is not UTF-8")]
    [InlineData("0001 0000 0002 0000 0000 0000 0161 00 0001 0001", "a question count above the questions there")]
    [InlineData("0001 0000 0000 0001 0000 0000 0161 00 0001 0001 0000 003c 0005 6440000101", "an A record of 5 bytes")]
    [InlineData("0001 0000 0000 0001 0000 0000 0161 00 000c 0001 0000 003c 0004 0161 0000", "a PTR whose name is shorter than its RDLENGTH")]
    [InlineData("0001 0000 0000 0001 0000 0000 0161 00 000c 0001 0000 003c 0002 c002", "a PTR pointing into the header")]
    [InlineData("0001 0000 0000 0001 0000 0000 0161 00 0001 0001 0000 003c 0010 64400001", "RDLENGTH past the end")]
    [InlineData("0001 0000 0000 0001 0000 0000 0161 00 0010 0001 0000 003c 0002 01ff", "a TXT string that is not ASCII")]
    [InlineData("0001 0000 0000 0000 0000 0001 00 0029 1000 0000 0000 0005 000a 0009 00", "an EDNS option longer than its OPT record")]
    [InlineData("0001 0000 ffff ffff ffff ffff", "every count at 65535 and no bytes")]
    [InlineData("0001 0000 00", "a short header")]
    public void Crafted_malformed_messages_are_rejected(string hex, string what) =>
        Assert.False(TryRead(WireGen.FromHex(hex), out _), what);

    [Fact]
    public void A_name_over_255_bytes_is_rejected_also_when_built_from_pointers()
    {
        // Four 63-byte labels, each followed by a pointer to the previous one: every pointer goes
        // backwards, but the name read from the last one is 4 × 64 + 1 = 257 bytes long.
        var bytes = new List<byte> { 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
        int previous = -1;
        var starts = new List<int>();
        for (int i = 0; i < 4; i++)
        {
            int start = bytes.Count;
            starts.Add(start);
            bytes.Add(63);
            bytes.AddRange(Enumerable.Repeat((byte)'x', 63));
            if (previous < 0)
            {
                bytes.Add(0);
            }
            else
            {
                bytes.Add((byte)(0xC0 | (previous >> 8)));
                bytes.Add((byte)previous);
            }

            previous = start;
        }

        var message = bytes.ToArray();
        int offset = starts[^1];
        Assert.False(DnsMessageShape.TrySkipName(message, ref offset));
        int ok = starts[2]; // three labels: 193 bytes, fine
        Assert.True(DnsMessageShape.TrySkipName(message, ref ok));
        Assert.Equal(starts[2] + 64 + 2, ok);
    }

    [Fact]
    public void A_name_of_thirty_thousand_labels_is_refused_before_makaretu_recurses_into_it()
    {
        // Makaretu.Dns reads a name with one nested call per label, each copying the labels below, and
        // no length limit: this name would cost it 3.6 GB. The shape check stops at the 256th byte.
        var bytes = new byte[12 + (30_000 * 2) + 1 + 4];
        bytes[5] = 1;
        for (int i = 0; i < 30_000; i++)
        {
            bytes[12 + (2 * i)] = 1;
            bytes[13 + (2 * i)] = (byte)'a';
        }

        Assert.False(DnsWire.TryRead(bytes, DnsReadLimits.Any, out _, out var error));
        Assert.Equal(DnsShapeError.BadName, error);
        Assert.False(DnsWire.TryRead(bytes, DnsReadLimits.Query, out _, out error));
        Assert.Equal(DnsShapeError.TooLong, error);
    }

    // PTR records whose names each add a label to the previous record's name: expanded names grow by
    // one label per record, and Makaretu.Dns keeps every one. (Makaretu.Dns cannot follow a pointer to
    // the root name, it remembers only names with a label, so the owners point to the question "q".)
    private static byte[] PtrChain(int records)
    {
        var chain = new List<byte> { 0, 1, 0, 0, 0, 1, (byte)(records >> 8), (byte)records, 0, 0, 0, 0, 1, (byte)'q', 0, 0, 12, 0, 1 };
        int previous = -1;
        for (int i = 0; i < records; i++)
        {
            chain.AddRange([0xC0, 12, 0, 12, 0, 1, 0, 0, 0, 60, 0, (byte)(previous < 0 ? 3 : 4)]);
            int start = chain.Count;
            chain.AddRange(previous < 0 ? [1, (byte)'a', 0] : [1, (byte)'a', (byte)(0xC0 | (previous >> 8)), (byte)previous]);
            previous = start;
        }

        return [.. chain];
    }

    // One PTR whose name is <paramref name="labels"/> one-byte labels: Makaretu.Dns recurses once per
    // label and copies the labels below at every level.
    private static byte[] DeepPtr(int labels)
    {
        var deep = new List<byte> { 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 12, 0, 1, 0, 0, 0, 60 };
        deep.AddRange([(byte)(((labels * 2) + 1) >> 8), (byte)((labels * 2) + 1)]);
        for (int i = 0; i < labels; i++)
        {
            deep.AddRange([1, (byte)'a']);
        }

        deep.Add(0);
        return [.. deep];
    }

    [Fact]
    public void Hostile_record_data_within_the_query_limits_costs_little_and_beyond_them_is_refused()
    {
        var tooMany = PtrChain(250);
        Assert.True(tooMany.Length <= DnsReadLimits.Query.MaxLength);
        Assert.False(DnsWire.TryRead(tooMany, DnsReadLimits.Query, out _, out var refused));
        Assert.Equal(DnsShapeError.TooManyEntries, refused);

        // 2000 labels: within the length cap, but the name is checked like any other and refused.
        var deep = DeepPtr(2000);
        Assert.True(deep.Length <= DnsReadLimits.Query.MaxLength);
        Assert.False(DnsWire.TryRead(deep, DnsReadLimits.Query, out _, out refused));
        Assert.Equal(DnsShapeError.BadName, refused);

        foreach (var message in new[] { PtrChain(DnsReadLimits.Query.MaxRecords), DeepPtr(127) })
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            bool read = DnsWire.TryRead(message, DnsReadLimits.Query, out var m, out var error);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(read, error.ToString());
            Assert.True(allocated < 256 << 10, $"{allocated} bytes allocated reading {message.Length} bytes");
            Assert.NotEmpty(m!.Answers);
        }
    }

    private static readonly byte[][] Valid =
    [
        DigQuery,
        DnsWire.ToArray(Build(9, 0x8580, [new Question { Name = "a.tunnelmesh", Type = DnsType.ANY, Class = DnsClass.IN }],
            [new ARecord { Name = "a.tunnelmesh", Address = IPAddress.Parse("100.64.0.9") }, new PTRRecord { Name = "9.0.64.100.in-addr.arpa", DomainName = "a.tunnelmesh" }],
            [new SOARecord { Name = "tunnelmesh", PrimaryName = "tunnelmesh", Mailbox = "hostmaster.tunnelmesh", SerialNumber = 1 }],
            [new OPTRecord { RequestorPayloadSize = 4096 }])),
    ];

    /// <summary>Random bytes, and valid messages with bytes overwritten, cut short or extended.</summary>
    internal static Gen<byte[]> HostileBytes { get; } = Gen.OneOf(
        WireGen.Bytes(300),
        WireGen.Bytes(300).Select(b =>
        {
            if (b.Length >= 12)
            {
                // One question and no records, so random names get read and followed.
                b.AsSpan(4, 8).Clear();
                b[5] = 1;
            }

            return b;
        }),
        from template in Gen.Elements(Valid)
        from edits in Gen.Choose(1, 6).SelectMany(n => Gen.ListOf(Gen.Zip(Gen.Choose(0, template.Length - 1), WireGen.Byte), n))
        from cut in Gen.Choose(-8, template.Length)
        from tail in WireGen.Bytes(8)
        select Mutate(template, edits, cut, tail));

    private static byte[] Mutate(byte[] template, IEnumerable<(int Index, byte Value)> edits, int cut, byte[] tail)
    {
        var b = template.ToArray();
        foreach (var (index, value) in edits)
        {
            b[index] = value;
        }

        return cut < 0 ? [.. b, .. tail] : b[..cut];
    }

    [Property(MaxTest = 2000)]
    public Property Hostile_bytes_never_throw_and_what_reads_writes_back_to_the_same_message() =>
        Prop.ForAll(HostileBytes.ToArbitrary(), bytes =>
            !TryRead(bytes, out var m) || (TryRead(DnsWire.ToArray(m!), out var again) && SameContent(m!, again!)));

    [Theory]
    [InlineData("100.64.0.1", "1.0.64.100.in-addr.arpa")]
    [InlineData("fd7a:115c:a1e0::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa")]
    public void Reverse_names_go_both_ways(string address, string reverse)
    {
        Assert.Equal(reverse, DnsReverseName.For(IPAddress.Parse(address)));
        Assert.True(DnsReverseName.TryParse(reverse.ToUpperInvariant() + ".", out var back));
        Assert.Equal(IPAddress.Parse(address), back);
    }

    [Theory]
    [InlineData("0.64.100.in-addr.arpa")]
    [InlineData("01.0.64.100.in-addr.arpa")]
    [InlineData("256.0.64.100.in-addr.arpa")]
    [InlineData("1.0.64.100.example")]
    [InlineData("x.0.64.100.in-addr.arpa")]
    public void Partial_or_bad_reverse_names_are_not_addresses(string name) =>
        Assert.False(DnsReverseName.TryParse(name, out _));
}
