using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using TunnelMesh.Net.Dns;
using TunnelMesh.Net.Stack;
using TunnelMesh.Net.Tests.Stack;
using TunnelMesh.Net.Tests.Support;
using Makaretu.Dns;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire.Dns;

namespace TunnelMesh.Net.Tests.Dns;

/// <summary>
/// The node's DNS server asked through the mesh: node A queries node B's address on port 53 over
/// UDP and TCP, B answers from its name table.
/// </summary>
public sealed class MeshDnsServerTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);
    private static readonly IPAddress LaptopV4 = IPAddress.Parse("100.64.0.9");
    private static readonly IPAddress LaptopV6 = IPAddress.Parse("fd7a:115c:a1e0::9");

    private static void FillNames(MeshNode node)
    {
        var many = Enumerable.Range(1, 60).Select(i => new IPAddress([100, 64, 1, (byte)i])).ToList();
        node.Names.Replace([
            new MeshName("laptop", [LaptopV4, LaptopV6]),
            new MeshName("printer", [IPAddress.Parse("100.64.0.10")]),
            new MeshName("big", many),
        ]);
    }

    private static Message Query(string name, DnsType type, ushort id = 0x1234, bool recursionDesired = true, int? ednsSize = null)
    {
        var m = new Message { Id = id, RD = recursionDesired };
        m.Questions.Add(new Question { Name = name, Type = type, Class = DnsClass.IN });
        if (ednsSize is { } size)
        {
            m.AdditionalRecords.Add(new OPTRecord { RequestorPayloadSize = (ushort)size });
        }

        return m;
    }

    private static Message Parse(byte[] bytes)
    {
        Assert.True(DnsWire.TryRead(bytes, DnsReadLimits.Any, out var message, out var error), $"the answer parses ({error})");
        return message;
    }

    private static (string Name, DnsType Type, DnsClass Class, TimeSpan Ttl) Head(ResourceRecord r) => (r.Name.ToString(), r.Type, r.Class, r.TTL);

    private static readonly TimeSpan Minute = TimeSpan.FromSeconds(60);

    private static async Task<byte[]> AskUdpRawAsync(MeshNode from, IPAddress server, byte[] query)
    {
        await using var socket = from.ListenUdp(0);
        await socket.SendToAsync(query, new IPEndPoint(server, 53));
        var buffer = new byte[65536];
        var r = await socket.ReceiveFromAsync(buffer).AsTask().Within(Limit, "a DNS answer over UDP");
        Assert.Equal(new IPEndPoint(server, 53), r.RemoteEndPoint);
        return buffer[..r.ReceivedBytes];
    }

    private static async Task<Message> AskUdpAsync(MeshNode from, IPAddress server, Message query) =>
        Parse(await AskUdpRawAsync(from, server, query.ToByteArray()));

    private static async Task<Message> AskTcpAsync(MeshTcpStream stream, Message query)
    {
        var bytes = query.ToByteArray();
        var framed = new byte[bytes.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)bytes.Length);
        bytes.CopyTo(framed, 2);
        await stream.WriteAsync(framed);
        var length = new byte[2];
        await stream.ReadExactlyAsync(length).AsTask().Within(Limit, "a DNS answer's length over TCP");
        var body = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
        await stream.ReadExactlyAsync(body).AsTask().Within(Limit, "a DNS answer over TCP");
        return Parse(body);
    }

    [Fact]
    public async Task Answers_a_and_aaaa_ptr_nxdomain_nodata_and_refused_over_udp()
    {
        await using var pair = await NodePair.StartAsync();
        FillNames(pair.B);

        var a = await AskUdpAsync(pair.A, NodePair.IpB, Query("laptop.tunnelmesh", DnsType.A));
        Assert.Equal(0x1234, a.Id);
        Assert.True(a.QR);
        Assert.True(a.AA);
        Assert.True(a.RD);
        Assert.False(a.RA);
        Assert.Equal(MessageStatus.NoError, a.Status);
        var question = Assert.Single(a.Questions);
        Assert.Equal(("laptop.tunnelmesh", DnsType.A, DnsClass.IN), (question.Name.ToString(), question.Type, question.Class));
        var answerA = Assert.IsType<ARecord>(Assert.Single(a.Answers));
        Assert.Equal(("laptop.tunnelmesh", DnsType.A, DnsClass.IN, Minute), Head(answerA));
        Assert.Equal(LaptopV4, answerA.Address);

        var aaaa = await AskUdpAsync(pair.A, NodePair.IpB, Query("LAPTOP.TunnelMesh.", DnsType.AAAA, recursionDesired: false));
        Assert.False(aaaa.RD);
        var answerAaaa = Assert.IsType<AAAARecord>(Assert.Single(aaaa.Answers));
        Assert.Equal(("LAPTOP.TunnelMesh", DnsType.AAAA, DnsClass.IN, Minute), Head(answerAaaa));
        Assert.Equal(LaptopV6, answerAaaa.Address);

        var ptr = await AskUdpAsync(pair.A, NodePair.IpB, Query("9.0.64.100.in-addr.arpa", DnsType.PTR));
        Assert.True(ptr.AA);
        Assert.Equal("laptop.tunnelmesh", Assert.IsType<PTRRecord>(Assert.Single(ptr.Answers)).DomainName.ToString());
        var ptr6 = await AskUdpAsync(pair.A, NodePair.IpB, Query(DnsReverseName.For(LaptopV6), DnsType.PTR));
        Assert.Equal("laptop.tunnelmesh", Assert.IsType<PTRRecord>(Assert.Single(ptr6.Answers)).DomainName.ToString());

        var nx = await AskUdpAsync(pair.A, NodePair.IpB, Query("nobody.tunnelmesh", DnsType.A));
        Assert.Equal(MessageStatus.NameError, nx.Status);
        Assert.True(nx.AA);
        Assert.Empty(nx.Answers);
        var soa = Assert.IsType<SOARecord>(Assert.Single(nx.AuthorityRecords));
        Assert.Equal(("tunnelmesh", DnsType.SOA), (soa.Name.ToString(), soa.Type));
        Assert.Equal(Minute, soa.Minimum);
        Assert.Equal(2u, soa.SerialNumber); // one change of the name table since start

        var nxReverse = await AskUdpAsync(pair.A, NodePair.IpB, Query("77.0.64.100.in-addr.arpa", DnsType.PTR));
        Assert.Equal(MessageStatus.NameError, nxReverse.Status);
        Assert.Equal("100.in-addr.arpa", Assert.Single(nxReverse.AuthorityRecords).Name.ToString());

        var nodata = await AskUdpAsync(pair.A, NodePair.IpB, Query("printer.tunnelmesh", DnsType.AAAA));
        Assert.Equal(MessageStatus.NoError, nodata.Status);
        Assert.True(nodata.AA);
        Assert.Empty(nodata.Answers);
        Assert.Equal(DnsType.SOA, Assert.Single(nodata.AuthorityRecords).Type);

        var mx = await AskUdpAsync(pair.A, NodePair.IpB, Query("laptop.tunnelmesh", DnsType.MX));
        Assert.Equal((MessageStatus.NoError, 0, 1), (mx.Status, mx.Answers.Count, mx.AuthorityRecords.Count));

        var refused = await AskUdpAsync(pair.A, NodePair.IpB, Query("example.com", DnsType.A));
        Assert.Equal(MessageStatus.Refused, refused.Status);
        Assert.False(refused.AA);
        Assert.False(refused.RA);
        Assert.Empty(refused.Answers);
        var refusedReverse = await AskUdpAsync(pair.A, NodePair.IpB, Query("1.2.0.192.in-addr.arpa", DnsType.PTR));
        Assert.Equal(MessageStatus.Refused, refusedReverse.Status);

        // A single label that holds a dot is not the two labels of a mesh name.
        var dotted = await AskUdpAsync(pair.A, NodePair.IpB, Query("laptop\\.tunnelmesh", DnsType.A));
        Assert.Equal(MessageStatus.Refused, dotted.Status);
        Assert.Equal(["laptop.tunnelmesh"], Assert.Single(dotted.Questions).Name.Labels);
    }

    [Fact]
    public async Task Udp_answers_over_512_bytes_are_truncated_unless_edns_allows_them_and_tcp_carries_them_whole()
    {
        await using var pair = await NodePair.StartAsync();
        FillNames(pair.B);

        var truncated = await AskUdpRawAsync(pair.A, NodePair.IpB, Query("big.tunnelmesh", DnsType.A).ToByteArray());
        Assert.True(truncated.Length <= 512);
        var t = Parse(truncated);
        Assert.True(t.TC);
        Assert.True(t.AA);
        Assert.Empty(t.Answers);
        Assert.Single(t.Questions);

        var edns = await AskUdpRawAsync(pair.A, NodePair.IpB, Query("big.tunnelmesh", DnsType.A, ednsSize: 1232).ToByteArray());
        Assert.True(edns.Length is > 512 and <= 1232, $"{edns.Length} bytes");
        var e = Parse(edns);
        Assert.False(e.TC);
        Assert.Equal(60, e.Answers.Count);
        Assert.Equal(4096, Assert.IsType<OPTRecord>(Assert.Single(e.AdditionalRecords)).RequestorPayloadSize);

        var ednsTruncated = Parse(await AskUdpRawAsync(pair.A, NodePair.IpB, Query("big.tunnelmesh", DnsType.A, ednsSize: 600).ToByteArray()));
        Assert.True(ednsTruncated.TC);
        Assert.Empty(ednsTruncated.Answers);
        Assert.IsType<OPTRecord>(Assert.Single(ednsTruncated.AdditionalRecords));

        await using var stream = await pair.A.DialAsync(NodePair.IpB, 53);
        var whole = await AskTcpAsync(stream, Query("big.tunnelmesh", DnsType.A));
        Assert.False(whole.TC);
        Assert.Equal(60, whole.Answers.Count);
    }

    [Fact]
    public async Task Several_queries_share_one_tcp_connection()
    {
        await using var pair = await NodePair.StartAsync();
        FillNames(pair.B);
        await using var stream = await pair.A.DialAsync(NodePair.IpB, 53);
        for (ushort id = 1; id <= 5; id++)
        {
            var answer = await AskTcpAsync(stream, Query(id % 2 == 0 ? "laptop.tunnelmesh" : "nope.tunnelmesh", DnsType.A, id));
            Assert.Equal(id, answer.Id);
            Assert.Equal(id % 2 == 0 ? MessageStatus.NoError : MessageStatus.NameError, answer.Status);
        }

        // Two queries in one write come back as two answers in order.
        var two = Query("laptop.tunnelmesh", DnsType.A, 100).ToByteArray();
        var three = Query("printer.tunnelmesh", DnsType.A, 101).ToByteArray();
        var both = new byte[two.Length + three.Length + 4];
        BinaryPrimitives.WriteUInt16BigEndian(both, (ushort)two.Length);
        two.CopyTo(both, 2);
        BinaryPrimitives.WriteUInt16BigEndian(both.AsSpan(two.Length + 2), (ushort)three.Length);
        three.CopyTo(both, two.Length + 4);
        await stream.WriteAsync(both);
        foreach (ushort id in new ushort[] { 100, 101 })
        {
            var length = new byte[2];
            await stream.ReadExactlyAsync(length).AsTask().Within(Limit, "a pipelined answer");
            var body = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
            await stream.ReadExactlyAsync(body).AsTask().Within(Limit, "a pipelined answer");
            Assert.Equal(id, BinaryPrimitives.ReadUInt16BigEndian(body));
        }
    }

    [Fact]
    public async Task Malformed_queries_get_formerr_or_notimp_and_responses_are_dropped_and_counted()
    {
        await using var pair = await NodePair.StartAsync();
        FillNames(pair.B);

        // A header promising a question that is not there.
        var formerr = await AskUdpRawAsync(pair.A, NodePair.IpB, Convert.FromHexString("abcd0100000100000000000003"));
        Assert.True(DnsHeader.TryRead(formerr, out var h));
        Assert.Equal((0xabcd, (int)MessageStatus.FormatError, true, true), (h.Id, h.Flags & 0xF, h.IsResponse, h.RecursionDesired));
        Assert.Equal(12, formerr.Length); // header only

        var twoQuestions = Query("laptop.tunnelmesh", DnsType.A);
        twoQuestions.Questions.Add(new Question { Name = "printer.tunnelmesh", Type = DnsType.A, Class = DnsClass.IN });
        Assert.Equal(MessageStatus.FormatError, (await AskUdpAsync(pair.A, NodePair.IpB, twoQuestions)).Status);

        var notify = Query("laptop.tunnelmesh", DnsType.SOA, recursionDesired: false);
        notify.Opcode = MessageOperation.Notify;
        var notimp = await AskUdpAsync(pair.A, NodePair.IpB, notify);
        Assert.Equal((MessageStatus.NotImplemented, MessageOperation.Notify), (notimp.Status, notimp.Opcode));

        var version1 = Query("laptop.tunnelmesh", DnsType.A, ednsSize: 1232);
        ((OPTRecord)version1.AdditionalRecords[0]).Version = 1;
        var badvers = await AskUdpAsync(pair.A, NodePair.IpB, version1);
        // BADVERS = 16: the upper 8 bits of the extended rcode in the OPT record (Makaretu.Dns calls them Opcode8), the lower 4 in the header.
        Assert.Equal(16, (((OPTRecord)Assert.Single(badvers.AdditionalRecords)).Opcode8 << 4) | ((int)badvers.Status & 0xF));

        // A response sent to the server, and a runt: no answer, each counted under its reason. The next query still works.
        long responses = pair.B.Drops.Get(DropReason.DnsNotAQuery);
        long runts = pair.B.Drops.Get(DropReason.DnsNoHeader);
        await using (var socket = pair.A.ListenUdp(0))
        {
            var response = Query("laptop.tunnelmesh", DnsType.A);
            response.QR = true;
            await socket.SendToAsync(response.ToByteArray(), new IPEndPoint(NodePair.IpB, 53));
            await socket.SendToAsync(new byte[5], new IPEndPoint(NodePair.IpB, 53));
        }

        await TaskTimeouts.Until(() => pair.B.Drops.Get(DropReason.DnsNotAQuery) == responses + 1 && pair.B.Drops.Get(DropReason.DnsNoHeader) == runts + 1, Limit, "two DNS drops counted");
        Assert.Equal(MessageStatus.NoError, (await AskUdpAsync(pair.A, NodePair.IpB, Query("laptop.tunnelmesh", DnsType.A))).Status);
    }

    [Fact]
    public async Task Other_names_go_to_the_upstream_and_its_answer_comes_back_with_the_clients_id()
    {
        using var upstream = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var upstreamEndPoint = (IPEndPoint)upstream.Client.LocalEndPoint!;
        var keyA = NodePrivateKey.Generate();
        var keyB = NodePrivateKey.Generate();
        var optionsB = NodePair.Options(keyB, NodePair.IpB, keyA.PublicKey, NodePair.IpA, null, null);
        optionsB.DnsUpstream = upstreamEndPoint;
        await using var b = new MeshNode(optionsB);
        await b.StartAsync();
        var optionsA = NodePair.Options(keyA, NodePair.IpA, keyB.PublicKey, NodePair.IpB, new IPEndPoint(IPAddress.Loopback, b.ListenPort), null);
        optionsA.EnableDns = false;
        await using var a = new MeshNode(optionsA);
        await a.StartAsync();
        Assert.Null(a.DnsServer);
        Assert.NotNull(b.DnsServer);

        var asking = AskUdpAsync(a, NodePair.IpB, Query("example.com", DnsType.A, id: 0x4242));
        var forwarded = await upstream.ReceiveAsync().WaitAsync(Limit);
        var fq = Parse(forwarded.Buffer);
        Assert.Equal("example.com", fq.Questions.Single().Name.ToString());
        var reply = new Message { Id = fq.Id, QR = true, RD = true, RA = true };
        reply.Questions.AddRange(fq.Questions);
        reply.Answers.Add(new ARecord { Name = "example.com", TTL = TimeSpan.FromSeconds(300), Address = IPAddress.Parse("192.0.2.7") });
        await upstream.SendAsync(reply.ToByteArray(), forwarded.RemoteEndPoint);

        var answer = await asking;
        Assert.Equal(0x4242, answer.Id);
        Assert.True(answer.RA);
        Assert.Equal(IPAddress.Parse("192.0.2.7"), Assert.IsType<ARecord>(Assert.Single(answer.Answers)).Address);

        // Mesh names are still answered locally, without RA.
        b.Names.Replace([new MeshName("laptop", [LaptopV4])]);
        var mesh = await AskUdpAsync(a, NodePair.IpB, Query("laptop.tunnelmesh", DnsType.A));
        Assert.False(mesh.RA);
        Assert.True(mesh.AA);
    }

    [Fact]
    public async Task An_upstream_that_does_not_answer_gives_servfail()
    {
        using var silent = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var drops = new DropCounters();
        await using var stack = new NetStack(new NetStackOptions { Address = 0x64400002 }, new TestLink(), new PacketBufferPool(), drops, TimeProvider.System, NullLogger.Instance);
        var options = new MeshDnsServerOptions { Upstream = (IPEndPoint)silent.Client.LocalEndPoint!, UpstreamTimeout = TimeSpan.FromMilliseconds(200), UpstreamAttempts = 2 };
        await using var server = new MeshDnsServer(stack, new MeshNameTable(), options, drops, NullLogger.Instance);

        var answer = await server.AnswerAsync(Query("example.com", DnsType.A, 77).ToByteArray(), overUdp: true, CancellationToken.None).AsTask().Within(Limit, "SERVFAIL");
        Assert.NotNull(answer);
        var m = Parse(answer);
        Assert.Equal((77, MessageStatus.ServerFailure, true), (m.Id, m.Status, m.RA));
        // Both attempts reached the upstream.
        Assert.Equal(2, silent.Available > 0 ? CountDatagrams(silent) : 0);
    }

    private static int CountDatagrams(UdpClient client)
    {
        int n = 0;
        while (client.Available > 0)
        {
            IPEndPoint? from = null;
            client.Receive(ref from);
            n++;
        }

        return n;
    }
}
