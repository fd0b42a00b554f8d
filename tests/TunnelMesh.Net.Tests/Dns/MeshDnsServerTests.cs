using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using TunnelMesh.Net.Dns;
using TunnelMesh.Net.Stack;
using TunnelMesh.Net.Tests.Stack;
using TunnelMesh.Net.Tests.Support;
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

    private static DnsMessage Query(string name, ushort type, ushort id = 0x1234, bool recursionDesired = true, int? ednsSize = null)
    {
        var m = new DnsMessage { Header = new DnsHeader(id, (ushort)(recursionDesired ? 0x0100 : 0), 0, 0, 0, 0) };
        m.Questions.Add(new DnsQuestion(name, type, DnsClass.In));
        if (ednsSize is { } size)
        {
            m.Additionals.Add(new DnsRecord("", DnsType.Opt, (ushort)size, 0, new DnsOpaqueData([])));
        }

        return m;
    }

    private static async Task<byte[]> AskUdpRawAsync(MeshNode from, IPAddress server, byte[] query)
    {
        await using var socket = from.ListenUdp(0);
        await socket.SendToAsync(query, new IPEndPoint(server, 53));
        var buffer = new byte[65536];
        var r = await socket.ReceiveFromAsync(buffer).AsTask().Within(Limit, "a DNS answer over UDP");
        Assert.Equal(new IPEndPoint(server, 53), r.RemoteEndPoint);
        return buffer[..r.ReceivedBytes];
    }

    private static async Task<DnsMessage> AskUdpAsync(MeshNode from, IPAddress server, DnsMessage query)
    {
        var bytes = await AskUdpRawAsync(from, server, query.ToArray());
        Assert.True(DnsMessage.TryParse(bytes, out var answer), "the answer parses");
        return answer;
    }

    private static async Task<DnsMessage> AskTcpAsync(MeshTcpStream stream, DnsMessage query)
    {
        var bytes = query.ToArray();
        var framed = new byte[bytes.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)bytes.Length);
        bytes.CopyTo(framed, 2);
        await stream.WriteAsync(framed);
        var length = new byte[2];
        await stream.ReadExactlyAsync(length).AsTask().Within(Limit, "a DNS answer's length over TCP");
        var body = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
        await stream.ReadExactlyAsync(body).AsTask().Within(Limit, "a DNS answer over TCP");
        Assert.True(DnsMessage.TryParse(body, out var answer));
        return answer;
    }

    [Fact]
    public async Task Answers_a_and_aaaa_ptr_nxdomain_nodata_and_refused_over_udp()
    {
        await using var pair = await NodePair.StartAsync();
        FillNames(pair.B);

        var a = await AskUdpAsync(pair.A, NodePair.IpB, Query("laptop.tunnelmesh", DnsType.A));
        Assert.Equal(0x1234, a.Header.Id);
        Assert.True(a.Header.IsResponse);
        Assert.True(a.Header.Authoritative);
        Assert.True(a.Header.RecursionDesired);
        Assert.False(a.Header.RecursionAvailable);
        Assert.Equal(DnsRcode.NoError, a.Header.Rcode);
        Assert.Equal(new DnsQuestion("laptop.tunnelmesh", DnsType.A, DnsClass.In), Assert.Single(a.Questions));
        Assert.Equal(new DnsRecord("laptop.tunnelmesh", DnsType.A, DnsClass.In, 60, new DnsAddressData(LaptopV4)), Assert.Single(a.Answers));

        var aaaa = await AskUdpAsync(pair.A, NodePair.IpB, Query("LAPTOP.TunnelMesh.", DnsType.Aaaa, recursionDesired: false));
        Assert.False(aaaa.Header.RecursionDesired);
        Assert.Equal(new DnsRecord("LAPTOP.TunnelMesh", DnsType.Aaaa, DnsClass.In, 60, new DnsAddressData(LaptopV6)), Assert.Single(aaaa.Answers));

        var ptr = await AskUdpAsync(pair.A, NodePair.IpB, Query("9.0.64.100.in-addr.arpa", DnsType.Ptr));
        Assert.True(ptr.Header.Authoritative);
        Assert.Equal(new DnsNameData("laptop.tunnelmesh"), Assert.Single(ptr.Answers).Data);
        var ptr6 = await AskUdpAsync(pair.A, NodePair.IpB, Query(DnsReverseName.For(LaptopV6), DnsType.Ptr));
        Assert.Equal(new DnsNameData("laptop.tunnelmesh"), Assert.Single(ptr6.Answers).Data);

        var nx = await AskUdpAsync(pair.A, NodePair.IpB, Query("nobody.tunnelmesh", DnsType.A));
        Assert.Equal(DnsRcode.NxDomain, nx.Header.Rcode);
        Assert.True(nx.Header.Authoritative);
        Assert.Empty(nx.Answers);
        var soa = Assert.Single(nx.Authorities);
        Assert.Equal(("tunnelmesh", DnsType.Soa), (soa.Name, soa.Type));
        Assert.Equal(60u, ((DnsSoaData)soa.Data).Minimum);
        Assert.Equal(2u, ((DnsSoaData)soa.Data).Serial); // one change of the name table since start

        var nxReverse = await AskUdpAsync(pair.A, NodePair.IpB, Query("77.0.64.100.in-addr.arpa", DnsType.Ptr));
        Assert.Equal(DnsRcode.NxDomain, nxReverse.Header.Rcode);
        Assert.Equal("100.in-addr.arpa", Assert.Single(nxReverse.Authorities).Name);

        var nodata = await AskUdpAsync(pair.A, NodePair.IpB, Query("printer.tunnelmesh", DnsType.Aaaa));
        Assert.Equal(DnsRcode.NoError, nodata.Header.Rcode);
        Assert.True(nodata.Header.Authoritative);
        Assert.Empty(nodata.Answers);
        Assert.Equal(DnsType.Soa, Assert.Single(nodata.Authorities).Type);

        var mx = await AskUdpAsync(pair.A, NodePair.IpB, Query("laptop.tunnelmesh", DnsType.Mx));
        Assert.Equal((DnsRcode.NoError, 0, 1), (mx.Header.Rcode, mx.Answers.Count, mx.Authorities.Count));

        var refused = await AskUdpAsync(pair.A, NodePair.IpB, Query("example.com", DnsType.A));
        Assert.Equal(DnsRcode.Refused, refused.Header.Rcode);
        Assert.False(refused.Header.Authoritative);
        Assert.False(refused.Header.RecursionAvailable);
        Assert.Empty(refused.Answers);
        var refusedReverse = await AskUdpAsync(pair.A, NodePair.IpB, Query("1.2.0.192.in-addr.arpa", DnsType.Ptr));
        Assert.Equal(DnsRcode.Refused, refusedReverse.Header.Rcode);
    }

    [Fact]
    public async Task Udp_answers_over_512_bytes_are_truncated_unless_edns_allows_them_and_tcp_carries_them_whole()
    {
        await using var pair = await NodePair.StartAsync();
        FillNames(pair.B);

        var truncated = await AskUdpRawAsync(pair.A, NodePair.IpB, Query("big.tunnelmesh", DnsType.A).ToArray());
        Assert.True(truncated.Length <= 512);
        Assert.True(DnsMessage.TryParse(truncated, out var t));
        Assert.True(t.Header.Truncated);
        Assert.Empty(t.Answers);
        Assert.Single(t.Questions);

        var edns = await AskUdpRawAsync(pair.A, NodePair.IpB, Query("big.tunnelmesh", DnsType.A, ednsSize: 1232).ToArray());
        Assert.True(edns.Length is > 512 and <= 1232, $"{edns.Length} bytes");
        Assert.True(DnsMessage.TryParse(edns, out var e));
        Assert.False(e.Header.Truncated);
        Assert.Equal(60, e.Answers.Count);
        Assert.NotNull(e.FindOpt());

        await using var stream = await pair.A.DialAsync(NodePair.IpB, 53);
        var whole = await AskTcpAsync(stream, Query("big.tunnelmesh", DnsType.A));
        Assert.False(whole.Header.Truncated);
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
            Assert.Equal(id, answer.Header.Id);
            Assert.Equal(id % 2 == 0 ? DnsRcode.NoError : DnsRcode.NxDomain, answer.Header.Rcode);
        }

        // Two queries in one write come back as two answers in order.
        var two = Query("laptop.tunnelmesh", DnsType.A, 100).ToArray();
        var three = Query("printer.tunnelmesh", DnsType.A, 101).ToArray();
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
        Assert.Equal((0xabcd, DnsRcode.FormErr, true), (h.Id, h.Rcode, h.IsResponse));

        var twoQuestions = Query("laptop.tunnelmesh", DnsType.A);
        twoQuestions.Questions.Add(new DnsQuestion("printer.tunnelmesh", DnsType.A, DnsClass.In));
        Assert.Equal(DnsRcode.FormErr, (await AskUdpAsync(pair.A, NodePair.IpB, twoQuestions)).Header.Rcode);

        var notify = Query("laptop.tunnelmesh", DnsType.Soa);
        notify.Header = notify.Header with { Flags = 4 << 11 }; // opcode NOTIFY
        var notimp = await AskUdpAsync(pair.A, NodePair.IpB, notify);
        Assert.Equal((DnsRcode.NotImp, 4), (notimp.Header.Rcode, notimp.Header.Opcode));

        var version1 = Query("laptop.tunnelmesh", DnsType.A, ednsSize: 1232);
        version1.Additionals[0] = version1.Additionals[0] with { Ttl = 1 << 16 };
        var badvers = await AskUdpAsync(pair.A, NodePair.IpB, version1);
        Assert.Equal((uint)DnsRcode.BadVers, (badvers.FindOpt()!.Ttl >> 24 << 4) | (uint)badvers.Header.Rcode);

        // A response sent to the server, and a runt: no answer, counted. The next query still works.
        long before = pair.B.Drops.Get(DropReason.DnsDropped);
        await using (var socket = pair.A.ListenUdp(0))
        {
            var response = Query("laptop.tunnelmesh", DnsType.A);
            response.Header = response.Header with { Flags = 0x8000 };
            await socket.SendToAsync(response.ToArray(), new IPEndPoint(NodePair.IpB, 53));
            await socket.SendToAsync(new byte[5], new IPEndPoint(NodePair.IpB, 53));
        }

        await TaskTimeouts.Until(() => pair.B.Drops.Get(DropReason.DnsDropped) == before + 2, Limit, "two DNS drops counted");
        Assert.Equal(DnsRcode.NoError, (await AskUdpAsync(pair.A, NodePair.IpB, Query("laptop.tunnelmesh", DnsType.A))).Header.Rcode);
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
        Assert.True(DnsMessage.TryParse(forwarded.Buffer, out var fq));
        Assert.Equal("example.com", fq.Questions.Single().Name);
        var reply = new DnsMessage { Header = new DnsHeader(fq.Header.Id, 0x8180, 0, 0, 0, 0) };
        reply.Questions.AddRange(fq.Questions);
        reply.Answers.Add(new DnsRecord("example.com", DnsType.A, DnsClass.In, 300, new DnsAddressData(IPAddress.Parse("192.0.2.7"))));
        await upstream.SendAsync(reply.ToArray(), forwarded.RemoteEndPoint);

        var answer = await asking;
        Assert.Equal(0x4242, answer.Header.Id);
        Assert.True(answer.Header.RecursionAvailable);
        Assert.Equal(new DnsAddressData(IPAddress.Parse("192.0.2.7")), Assert.Single(answer.Answers).Data);

        // Mesh names are still answered locally, without RA.
        b.Names.Replace([new MeshName("laptop", [LaptopV4])]);
        var mesh = await AskUdpAsync(a, NodePair.IpB, Query("laptop.tunnelmesh", DnsType.A));
        Assert.False(mesh.Header.RecursionAvailable);
        Assert.True(mesh.Header.Authoritative);
    }

    [Fact]
    public async Task An_upstream_that_does_not_answer_gives_servfail()
    {
        using var silent = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var drops = new DropCounters();
        await using var stack = new NetStack(new NetStackOptions { Address = 0x64400002 }, new TestLink(), new PacketBufferPool(), drops, TimeProvider.System, NullLogger.Instance);
        var options = new MeshDnsServerOptions { Upstream = (IPEndPoint)silent.Client.LocalEndPoint!, UpstreamTimeout = TimeSpan.FromMilliseconds(200), UpstreamAttempts = 2 };
        await using var server = new MeshDnsServer(stack, new MeshNameTable(), options, drops, NullLogger.Instance);

        var answer = await server.AnswerAsync(Query("example.com", DnsType.A, 77).ToArray(), overUdp: true, CancellationToken.None).AsTask().Within(Limit, "SERVFAIL");
        Assert.NotNull(answer);
        Assert.True(DnsMessage.TryParse(answer, out var m));
        Assert.Equal((77, DnsRcode.ServFail, true), (m.Header.Id, m.Header.Rcode, m.Header.RecursionAvailable));
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
