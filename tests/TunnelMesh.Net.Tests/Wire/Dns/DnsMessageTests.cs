using System.Net;
using FsCheck;
using FsCheck.Fluent;
using TunnelMesh.Net.Wire.Dns;

namespace TunnelMesh.Net.Tests.Wire.Dns;

public class DnsMessageTests
{
    // A query `dig @127.0.0.1 laptop.tunnelmesh AAAA` (BIND 9) sent, captured from a UDP socket: RD and AD, EDNS(0) with a cookie.
    private static readonly byte[] DigQuery = Convert.FromHexString(
        "622301200001000000000001066c6170746f700a74756e6e656c6d65736800001c000100002904d000000000000c000a0008931e7c0a4af03cca");

    private static readonly Gen<byte> LabelByte = Gen.Frequency(
        (20, Gen.Elements("abcdefghijklmnopqrstuvwxyz0123456789-".Select(c => (byte)c).ToArray())),
        (2, Gen.Elements((byte)'A', (byte)'Z')),
        (1, Gen.Elements((byte)'.', (byte)'\\', (byte)0, (byte)' ', (byte)0xFF, (byte)'"')));

    private static readonly Gen<string> Label = Gen.Choose(1, 12).SelectMany(n => Gen.ArrayOf(LabelByte, n)).Select(b => DnsName.EscapeLabel(b));

    // Names from a few shared suffixes, so that compression has something to find.
    private static readonly Gen<string> Name = Gen.Frequency(
        (1, Gen.Constant("")),
        (6, from head in Gen.Choose(0, 3).SelectMany(n => Gen.ListOf(Label, n))
            from tail in Gen.Elements("tunnelmesh", "example.org", "in-addr.arpa", "")
            select string.Join('.', head.Append(tail).Where(s => s.Length > 0))));

    private static readonly Gen<DnsRecord> Record =
        from name in Name
        from ttl in WireGen.UInt
        from kind in Gen.Choose(0, 4)
        from bytes in Gen.ArrayOf(WireGen.Byte, 16)
        from target in Name
        from serial in WireGen.UInt
        from opaque in WireGen.Bytes(40)
        select kind switch
        {
            0 => new DnsRecord(name, DnsType.A, DnsClass.In, ttl, new DnsAddressData(new IPAddress(bytes[..4]))),
            1 => new DnsRecord(name, DnsType.Aaaa, DnsClass.In, ttl, new DnsAddressData(new IPAddress(bytes))),
            2 => new DnsRecord(name, DnsType.Ptr, DnsClass.In, ttl, new DnsNameData(target)),
            3 => new DnsRecord(name, DnsType.Soa, DnsClass.In, ttl, new DnsSoaData(target, name.Length == 0 ? "hostmaster" : "hostmaster." + name, serial, 3600, 600, serial ^ 5, 60)),
            _ => new DnsRecord(name, DnsType.Txt, 3, ttl, new DnsOpaqueData(opaque)),
        };

    private static readonly Gen<DnsMessage> Message =
        from id in WireGen.UShort
        from flags in WireGen.UShort
        from questions in Gen.Choose(0, 2).SelectMany(n => Gen.ListOf(from n2 in Name from t in WireGen.UShort from c in WireGen.UShort select new DnsQuestion(n2, t, c), n))
        from answers in Gen.Choose(0, 4).SelectMany(n => Gen.ListOf(Record, n))
        from authorities in Gen.Choose(0, 2).SelectMany(n => Gen.ListOf(Record, n))
        from additionals in Gen.Choose(0, 2).SelectMany(n => Gen.ListOf(Record, n))
        select Build(id, flags, questions, answers, authorities, additionals);

    private static DnsMessage Build(ushort id, ushort flags, IEnumerable<DnsQuestion> q, IEnumerable<DnsRecord> an, IEnumerable<DnsRecord> ns, IEnumerable<DnsRecord> ar)
    {
        var m = new DnsMessage { Header = new DnsHeader(id, flags, 0, 0, 0, 0) };
        m.Questions.AddRange(q);
        m.Answers.AddRange(an);
        m.Authorities.AddRange(ns);
        m.Additionals.AddRange(ar);
        return m;
    }

    private static bool SameContent(DnsMessage a, DnsMessage b) =>
        a.Header.Id == b.Header.Id && a.Header.Flags == b.Header.Flags
        && a.Questions.SequenceEqual(b.Questions) && a.Answers.SequenceEqual(b.Answers)
        && a.Authorities.SequenceEqual(b.Authorities) && a.Additionals.SequenceEqual(b.Additionals);

    [Fact]
    public void Parse_of_write_is_identity_and_writing_again_gives_the_same_bytes()
    {
        Prop.ForAll(Message.ToArbitrary(), m =>
        {
            var bytes = m.ToArray();
            return DnsMessage.TryParse(bytes, out var parsed)
                && SameContent(m, parsed)
                && parsed.Header.QuestionCount == m.Questions.Count
                && parsed.Header.AnswerCount == m.Answers.Count
                && parsed.ToArray().AsSpan().SequenceEqual(bytes);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Escaped_labels_survive_a_round_trip_through_the_wire()
    {
        Prop.ForAll(Gen.ArrayOf(LabelByte, 1).SelectMany(_ => Gen.Choose(1, 63).SelectMany(n => Gen.ArrayOf(WireGen.Byte, n))).ToArbitrary(), label =>
        {
            string name = DnsName.EscapeLabel(label) + ".example";
            var m = Build(1, 0, [new DnsQuestion(name, DnsType.A, DnsClass.In)], [], [], []);
            var bytes = m.ToArray();
            return bytes[12] == label.Length && bytes.AsSpan(13, label.Length).SequenceEqual(label)
                && DnsMessage.TryParse(bytes, out var parsed) && parsed.Questions[0].Name == name;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Reads_a_query_dig_sent()
    {
        Assert.True(DnsMessage.TryParse(DigQuery, out var m));
        Assert.Equal(0x6223, m.Header.Id);
        Assert.False(m.Header.IsResponse);
        Assert.True(m.Header.RecursionDesired);
        Assert.Equal(0, m.Header.Opcode);
        Assert.Equal(new DnsQuestion("laptop.tunnelmesh", DnsType.Aaaa, DnsClass.In), Assert.Single(m.Questions));
        var opt = m.FindOpt();
        Assert.NotNull(opt);
        Assert.Equal("", opt.Name);
        Assert.Equal(1232, opt.Class); // the UDP payload size dig offers
        Assert.Equal(12, ((DnsOpaqueData)opt.Data).Bytes.Length); // one COOKIE option (code 10, 8 bytes)
        Assert.Equal(DigQuery, m.ToArray());
    }

    [Fact]
    public void Repeated_names_are_compressed_to_a_pointer_at_their_first_occurrence()
    {
        var m = Build(7, 0x8400, [new DnsQuestion("laptop.tunnelmesh", DnsType.A, DnsClass.In)], [new DnsRecord("laptop.tunnelmesh", DnsType.A, DnsClass.In, 60, new DnsAddressData(IPAddress.Parse("100.64.0.1")))], [new DnsRecord("tunnelmesh", DnsType.Soa, DnsClass.In, 60, new DnsSoaData("tunnelmesh", "hostmaster.tunnelmesh", 1, 2, 3, 4, 5))], []);
        var bytes = m.ToArray();
        int question = 12 + 19 + 4;
        Assert.Equal(0xC0, bytes[question]); // the answer's owner: a pointer to offset 12
        Assert.Equal(12, bytes[question + 1]);
        // The SOA's owner points into the question's name (offset 12 + 7 = "tunnelmesh").
        int soa = question + 2 + 10 + 4;
        Assert.Equal(new byte[] { 0xC0, 19 }, bytes[soa..(soa + 2)]);
        Assert.True(DnsMessage.TryParse(bytes, out var parsed));
        Assert.True(SameContent(m, parsed));
    }

    [Fact]
    public void Every_truncation_of_a_valid_message_is_rejected_without_throwing()
    {
        var m = Build(9, 0x8180, [new DnsQuestion("a.tunnelmesh", DnsType.Any, DnsClass.In)],
            [new DnsRecord("a.tunnelmesh", DnsType.A, DnsClass.In, 60, new DnsAddressData(IPAddress.Parse("100.64.0.9"))),
             new DnsRecord("a.tunnelmesh", DnsType.Aaaa, DnsClass.In, 60, new DnsAddressData(IPAddress.Parse("fd7a::9")))],
            [new DnsRecord("tunnelmesh", DnsType.Soa, DnsClass.In, 60, new DnsSoaData("tunnelmesh", "hostmaster.tunnelmesh", 1, 2, 3, 4, 5))], []);
        var bytes = m.ToArray();
        for (int n = 0; n < bytes.Length; n++)
        {
            Assert.False(DnsMessage.TryParse(bytes.AsSpan(0, n), out _), $"a message cut to {n} of {bytes.Length} bytes was accepted");
        }

        Assert.True(DnsMessage.TryParse(bytes, out _));
        Assert.False(DnsMessage.TryParse([.. bytes, 0], out _)); // trailing garbage
    }

    [Theory]
    [InlineData("0001 0000 0001 0000 0000 0000 c00c 0001 0001", "a pointer to itself")]
    [InlineData("0001 0000 0001 0000 0000 0000 c00e 0001 0001", "a pointer forward")]
    [InlineData("0001 0000 0001 0000 0000 0000 0161 c00e 0162 c00c 0001 0001", "two pointers pointing at each other")]
    [InlineData("0001 0000 0001 0000 0000 0000 0161 c00c 0001 0001", "a label followed by a pointer back to it")]
    [InlineData("0001 0000 0001 0000 0000 0000 4161 00 0001 0001", "an extended label type (0x40)")]
    [InlineData("0001 0000 0001 0000 0000 0000 8161 00 0001 0001", "a reserved label type (0x80)")]
    [InlineData("0001 0000 0001 0000 0000 0000 0561 00 0001 0001", "a label longer than the rest of the message")]
    [InlineData("0001 0000 0002 0000 0000 0000 0161 00 0001 0001", "a question count above the questions there")]
    [InlineData("0001 0000 0000 0001 0000 0000 0161 00 0001 0001 0000 003c 0005 6440000101", "an A record of 5 bytes")]
    [InlineData("0001 0000 0000 0001 0000 0000 0161 00 000c 0001 0000 003c 0004 0161 0000", "a PTR whose name is shorter than its RDLENGTH")]
    [InlineData("0001 0000 0000 0001 0000 0000 0161 00 0001 0001 0000 003c 0010 64400001", "RDLENGTH past the end")]
    [InlineData("0001 0000 ffff ffff ffff ffff", "every count at 65535 and no bytes")]
    [InlineData("0001 0000 00", "a short header")]
    public void Crafted_malformed_messages_are_rejected(string hex, string what)
    {
        var bytes = Convert.FromHexString(hex.Replace(" ", ""));
        Assert.False(DnsMessage.TryParse(bytes, out _), what);
    }

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

        // Read the name that starts at the last label of the chain.
        var message = bytes.ToArray();
        int offset = starts[^1];
        Assert.False(DnsName.TryRead(message, ref offset, out _));
        int ok = starts[2]; // three labels: 193 bytes, fine
        Assert.True(DnsName.TryRead(message, ref ok, out string name));
        Assert.Equal(3 * 63 + 2, name.Length);
    }

    [Fact]
    public void Random_bytes_never_throw_and_what_parses_writes_back_to_the_same_message()
    {
        static bool Check(byte[] bytes) =>
            !DnsMessage.TryParse(bytes, out var m) || (DnsMessage.TryParse(m.ToArray(), out var again) && SameContent(m, again));

        Prop.ForAll(WireGen.Bytes(300).ToArbitrary(), bytes =>
        {
            bool first = Check(bytes);
            if (bytes.Length >= 12)
            {
                // One question and no records, so random names get read and followed.
                bytes.AsSpan(4, 8).Clear();
                bytes[5] = 1;
            }

            return first && Check(bytes);
        }).QuickCheckThrowOnFailure();
    }

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
