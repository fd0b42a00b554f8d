using System.Net;
using BenchmarkDotNet.Attributes;
using Makaretu.Dns;
using Microsoft.Extensions.Logging.Abstractions;
using TunnelMesh.Net.Dns;
using TunnelMesh.Net.Stack;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire.Dns;
using Old = TunnelMesh.Net.Benchmarks.Dns.Baseline;

namespace TunnelMesh.Net.Benchmarks.Dns;

/// <summary>
/// Answering one A query for a mesh name: read the query, check it, build the answer (one A record)
/// and write it. The baseline is the former hand-written codec, kept under <c>Dns/Baseline/</c> for
/// this comparison only; <see cref="MakaretuDns"/> is the same steps on Makaretu.Dns behind our shape
/// check, and <see cref="Server"/> the server's whole <c>AnswerAsync</c> path.
/// </summary>
[MemoryDiagnoser]
public class DnsAnswerBenchmarks
{
    private static readonly IPAddress Laptop = IPAddress.Parse("100.64.0.9");
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(60);

    // `dig laptop.tunnelmesh A` as BIND 9 sends it: RD and AD, EDNS(0) with a cookie.
    private readonly byte[] _query = Convert.FromHexString(
        "622301200001000000000001066c6170746f700a74756e6e656c6d6573680000010001" + "00002904d000000000000c000a0008931e7c0a4af03cca");

    private NetStack? _stack;
    private MeshDnsServer? _server;

    [GlobalSetup]
    public void Setup()
    {
        var drops = new DropCounters();
        _stack = new NetStack(new NetStackOptions { Address = 0x64400002 }, new DiscardOutput(), new PacketBufferPool(), drops, TimeProvider.System, NullLogger.Instance);
        var names = new MeshNameTable();
        names.Replace([new MeshName("laptop", [Laptop])]);
        _server = new MeshDnsServer(_stack, names, new MeshDnsServerOptions(), drops, NullLogger.Instance);
        if (OldCodec() != MakaretuDns() || MakaretuDns() != Server())
        {
            throw new InvalidOperationException("The three paths give answers of different lengths.");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _server!.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _stack!.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true)]
    public int OldCodec()
    {
        if (!Old.DnsMessage.TryParse(_query, out var query) || query.Questions.Count != 1)
        {
            return -1;
        }

        var q = query.Questions[0];
        var reply = new Old.DnsMessage { Header = new Old.DnsHeader(query.Header.Id, Old.DnsHeader.ResponseFlags(query.Header.Flags, 0, authoritative: true, recursionAvailable: false), 0, 0, 0, 0) };
        reply.Questions.Add(q);
        reply.Answers.Add(new Old.DnsRecord(q.Name, Old.DnsType.A, Old.DnsClass.In, 60, new Old.DnsAddressData(Laptop)));
        reply.Additionals.Add(new Old.DnsRecord("", Old.DnsType.Opt, 4096, 0, new Old.DnsOpaqueData([])));
        return reply.ToArray().Length;
    }

    [Benchmark]
    public int MakaretuDns()
    {
        if (!DnsWire.TryRead(_query, DnsReadLimits.Query, out var query, out _) || query.Questions.Count != 1)
        {
            return -1;
        }

        var q = query.Questions[0];
        var reply = new Message { Id = query.Id, QR = true, RD = query.RD, AA = true };
        reply.Questions.Add(q);
        reply.Answers.Add(new ARecord { Name = q.Name, TTL = Ttl, Address = Laptop });
        reply.AdditionalRecords.Add(new OPTRecord { RequestorPayloadSize = 4096 });
        return DnsWire.ToArray(reply).Length;
    }

    [Benchmark]
    public int Server()
    {
        // A mesh name is answered synchronously.
        var pending = _server!.AnswerAsync(_query, overUdp: true, CancellationToken.None);
        return pending.IsCompleted ? pending.Result!.Length : throw new InvalidOperationException("not answered at once");
    }

    private sealed class DiscardOutput : IPacketOutput
    {
        public void SendPacket(PacketBuffer ipPacket) => ipPacket.Return();
    }
}
