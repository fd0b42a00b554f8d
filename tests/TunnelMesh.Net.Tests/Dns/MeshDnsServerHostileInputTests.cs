using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Makaretu.Dns;
using Microsoft.Extensions.Logging.Abstractions;
using TunnelMesh.Net.Dns;
using TunnelMesh.Net.Stack;
using TunnelMesh.Net.Tests.Stack;
using TunnelMesh.Net.Tests.Wire;
using TunnelMesh.Net.Tests.Wire.Dns;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire.Dns;

namespace TunnelMesh.Net.Tests.Dns;

/// <summary>
/// The DNS server as an attacker's target: random and mutated messages never throw out of it; each
/// one is answered (FORMERR when malformed, counted) or dropped and counted under its reason.
/// </summary>
public sealed class MeshDnsServerHostileInputTests : IAsyncLifetime
{
    private readonly DropCounters _drops = new();
    private NetStack? _stack;
    private MeshDnsServer? _server;

    public Task InitializeAsync()
    {
        _stack = new NetStack(new NetStackOptions { Address = 0x64400002 }, new TestLink(), new PacketBufferPool(), _drops, TimeProvider.System, NullLogger.Instance);
        var names = new MeshNameTable();
        names.Replace([new MeshName("laptop", [IPAddress.Parse("100.64.0.9"), IPAddress.Parse("fd7a:115c:a1e0::9")])]);
        _server = new MeshDnsServer(_stack, names, new MeshDnsServerOptions(), _drops, NullLogger.Instance);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _server!.DisposeAsync();
        await _stack!.DisposeAsync();
    }

    private static readonly Gen<byte[]> Queries = Gen.OneOf(
        DnsWireTests.HostileBytes,
        from name in Gen.Elements("laptop.tunnelmesh", "9.0.64.100.in-addr.arpa", "nobody.tunnelmesh", "example.com", "tunnelmesh")
        from type in Gen.Elements(DnsType.A, DnsType.AAAA, DnsType.PTR, DnsType.ANY, DnsType.SOA)
        from edns in Gen.Elements(true, false)
        from edits in Gen.Choose(0, 4).SelectMany(n => Gen.ListOf(Gen.Zip(Gen.Choose(0, 200), WireGen.Byte), n))
        select MutatedQuery(name, type, edns, edits));

    private static byte[] MutatedQuery(string name, DnsType type, bool edns, IEnumerable<(int Index, byte Value)> edits)
    {
        var m = new Message { Id = 0x4444, RD = true };
        m.Questions.Add(new Question { Name = name, Type = type, Class = DnsClass.IN });
        if (edns)
        {
            m.AdditionalRecords.Add(new OPTRecord { RequestorPayloadSize = 1232 });
        }

        var bytes = m.ToByteArray();
        foreach (var (index, value) in edits)
        {
            bytes[index % bytes.Length] = value;
        }

        return bytes;
    }

    [Property(MaxTest = 3000)]
    public Property Every_message_is_answered_or_dropped_and_counted_never_thrown() =>
        Prop.ForAll(Queries.ToArbitrary(), Gen.Elements(true, false).ToArbitrary(), (bytes, overUdp) =>
        {
            long noHeader = _drops.Get(DropReason.DnsNoHeader), notAQuery = _drops.Get(DropReason.DnsNotAQuery), drops = _drops.Total;
            long formatErrors = _server!.FormatErrors;
            var pending = _server.AnswerAsync(bytes, overUdp, CancellationToken.None);
            Assert.True(pending.IsCompleted, "without an upstream every answer is immediate");
            byte[]? response = pending.Result;
            if (bytes.Length < DnsHeader.Length)
            {
                return response is null && _drops.Get(DropReason.DnsNoHeader) == noHeader + 1 && _drops.Total == drops + 1;
            }

            if ((bytes[2] & 0x80) != 0)
            {
                return response is null && _drops.Get(DropReason.DnsNotAQuery) == notAQuery + 1 && _drops.Total == drops + 1;
            }

            Assert.NotNull(response);
            Assert.True(DnsWire.TryRead(response, DnsReadLimits.Any, out var answer, out var error), $"the answer to {Convert.ToHexString(bytes)} parses ({error})");
            Assert.True(DnsHeader.TryRead(response, out var header));
            bool formErr = (header.Flags & 0xF) == (int)MessageStatus.FormatError;
            return answer.QR
                && answer.Id == (bytes[0] << 8 | bytes[1])
                && (!overUdp || response.Length <= 4096)
                && _drops.Total == drops
                && _server.FormatErrors == formatErrors + (formErr ? 1 : 0);
        });

    [Fact]
    public async Task Queries_over_the_length_cap_get_formerr_without_being_read()
    {
        // A real query padded with an EDNS padding option up to 5000 bytes: well formed, but over the cap.
        var m = new Message { Id = 0x7777, RD = true };
        m.Questions.Add(new Question { Name = "laptop.tunnelmesh", Type = DnsType.A, Class = DnsClass.IN });
        m.AdditionalRecords.Add(new OPTRecord { RequestorPayloadSize = 1232, Options = [new EdnsPaddingOption { Padding = new byte[5000] }] });
        var bytes = m.ToByteArray();
        Assert.True(bytes.Length > DnsReadLimits.Query.MaxLength);
        var response = await _server!.AnswerAsync(bytes, overUdp: false, CancellationToken.None);
        Assert.True(DnsHeader.TryRead(response, out var header));
        Assert.Equal((0x7777, (int)MessageStatus.FormatError), (header.Id, header.Flags & 0xF));
        Assert.Equal(1, _server.FormatErrors);
    }
}
