using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Wire;

public class Ipv4ReassemblerTests
{
    private readonly PacketBufferPool _pool = new();
    private readonly DropCounters _drops = new();
    private readonly FakeTimeProvider _time = new();

    private static readonly Ipv4Header Header = new(0x64400001, 0x64400002, IpProtocol.Udp, 0, 64, 0x1234);

    private Ipv4Reassembler Create(int maxDatagrams = 64, int maxFragments = 64) => new(_pool, _drops, _time, maxDatagrams, maxFragments);

    /// <summary>Feeds the fragments; returns the reassembled bytes if exactly the last one completed the datagram.</summary>
    private byte[]? Feed(Ipv4Reassembler reassembler, IEnumerable<byte[]> fragments)
    {
        byte[]? result = null;
        foreach (var fragment in fragments)
        {
            Assert.True(Ipv4Packet.TryCreate(fragment, out var ip));
            if (reassembler.TryAdd(ip, _time.GetTimestamp(), out var whole))
            {
                Assert.Null(result);
                Assert.True(whole.Offset >= PacketBuffer.HeadRoom);
                result = whole.Span.ToArray();
                whole.Return();
            }
        }

        return result;
    }

    private static byte[] Datagram(int payloadLength, byte seed = 0)
    {
        var payload = new byte[payloadLength];
        for (int i = 0; i < payload.Length; i++)
        {
            payload[i] = (byte)((i * 7) + seed);
        }

        return WireGen.Ipv4Packet(Header, payload);
    }

    [Property]
    public Property Shuffled_fragments_with_duplicates_reassemble_to_the_original()
    {
        var gen = from length in Gen.Choose(9, 6000)
                  from cuts in Gen.ListOf(Gen.Choose(1, 750).Select(c => c * 8), 12)
                  let original = Datagram(length, (byte)cuts.Count)
                  let fragments = WireGen.Fragment(original, cuts)
                  where fragments.Count > 1
                  from duplicates in Gen.SubListOf(fragments.ToArray())
                  from order in Gen.Shuffle(fragments.Concat(duplicates).ToArray())
                  select (original, order);
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (original, order) = t;
            var reassembler = Create();
            // Duplicates after completion start a new datagram: only feed up to completion.
            var result = FeedUntilComplete(reassembler, order);
            return result is not null && result.AsSpan().SequenceEqual(original) && _drops.Total == 0;
        });
    }

    private byte[]? FeedUntilComplete(Ipv4Reassembler reassembler, IEnumerable<byte[]> fragments)
    {
        foreach (var fragment in fragments)
        {
            Ipv4Packet.TryCreate(fragment, out var ip);
            if (reassembler.TryAdd(ip, _time.GetTimestamp(), out var whole))
            {
                var bytes = whole.Span.ToArray();
                whole.Return();
                return bytes;
            }
        }

        return null;
    }

    [Fact]
    public void Reassembled_header_is_plain_and_valid()
    {
        var original = Datagram(3000);
        var reassembler = Create();
        var result = Feed(reassembler, WireGen.Fragment(original, [1400, 2800]).AsEnumerable().Reverse());
        Assert.NotNull(result);
        Assert.True(Ipv4Packet.TryCreate(result, out var ip));
        Assert.True(ip.VerifyHeaderChecksum());
        Assert.False(ip.IsFragment);
        Assert.Equal(3020, ip.TotalLength);
        Assert.Equal(Header with { PayloadLength = 3000 }, Ipv4Header.Parse(ip));
        Assert.Equal(0, reassembler.PendingCount);
    }

    [Fact]
    public void Conflicting_overlap_drops_the_datagram()
    {
        var original = Datagram(64);
        var fragments = WireGen.Fragment(original, [32]);
        var conflicting = (byte[])fragments[1].Clone();
        conflicting[^1] ^= 0xFF; // same range, different bytes
        var reassembler = Create();
        Assert.Null(Feed(reassembler, [fragments[1], conflicting]));
        Assert.Equal(2, _drops.Get(DropReason.Fragment));
        Assert.Equal(0, reassembler.PendingCount);
        // The first half alone starts a new, incomplete datagram.
        Assert.Null(Feed(reassembler, [fragments[0]]));
        Assert.Equal(1, reassembler.PendingCount);
    }

    [Fact]
    public void Second_last_fragment_with_another_end_is_a_conflict()
    {
        var a = WireGen.Fragment(Datagram(64), [32]);
        var b = WireGen.Fragment(Datagram(72), [32]);
        var reassembler = Create();
        Assert.Null(Feed(reassembler, [a[1], b[1]]));
        Assert.Equal(2, _drops.Get(DropReason.Fragment));
    }

    [Fact]
    public void Non_final_fragment_not_a_multiple_of_8_is_dropped()
    {
        var bytes = WireGen.Ipv4Packet(Header with { MoreFragments = true }, new byte[13]);
        var reassembler = Create();
        Assert.Null(Feed(reassembler, [bytes]));
        Assert.Equal(1, _drops.Get(DropReason.Fragment));
        Assert.Equal(0, reassembler.PendingCount);
    }

    [Fact]
    public void Oversized_datagram_is_dropped()
    {
        // Offset 65528 with 16 bytes would end beyond 65535 - 20.
        var bytes = WireGen.Ipv4Packet(Header with { FragmentOffset = 65528 }, new byte[16]);
        var reassembler = Create();
        Assert.Null(Feed(reassembler, [bytes]));
        Assert.Equal(1, _drops.Get(DropReason.Fragment));
    }

    [Fact]
    public void Largest_datagram_reassembles()
    {
        var original = Datagram(Ipv4Reassembler.MaxPayloadLength);
        var cuts = Enumerable.Range(1, 46).Select(i => i * 1400);
        var result = Feed(Create(), WireGen.Fragment(original, cuts));
        Assert.Equal(original, result);
    }

    [Fact]
    public void Incomplete_datagram_times_out_and_is_counted()
    {
        var fragments = WireGen.Fragment(Datagram(100), [48]);
        var reassembler = Create();
        Assert.Null(Feed(reassembler, [fragments[0]]));
        _time.Advance(TimeSpan.FromSeconds(29));
        reassembler.ExpireStale(_time.GetTimestamp());
        Assert.Equal(1, reassembler.PendingCount);
        _time.Advance(TimeSpan.FromSeconds(1));
        reassembler.ExpireStale(_time.GetTimestamp());
        Assert.Equal(0, reassembler.PendingCount);
        Assert.Equal(1, _drops.Get(DropReason.Fragment));
        // The late second half alone does not complete anything.
        Assert.Null(Feed(reassembler, [fragments[1]]));
    }

    [Fact]
    public void Too_many_datagrams_in_progress_drops_new_ones()
    {
        var reassembler = Create(maxDatagrams: 2);
        for (ushort id = 0; id < 3; id++)
        {
            var first = WireGen.Fragment(WireGen.Ipv4Packet(Header with { Identification = id }, new byte[64]), [32])[0];
            Feed(reassembler, [first]);
        }

        Assert.Equal(2, reassembler.PendingCount);
        Assert.Equal(1, _drops.Get(DropReason.Fragment));
    }

    [Fact]
    public void Too_many_fragments_drops_the_datagram()
    {
        var fragments = WireGen.Fragment(Datagram(80), Enumerable.Range(1, 9).Select(i => i * 8));
        Assert.Equal(10, fragments.Count);
        var reassembler = Create(maxFragments: 4);
        Assert.Null(Feed(reassembler, fragments));
        Assert.True(_drops.Get(DropReason.Fragment) >= 5);
    }

    [Fact]
    public void Fragments_of_different_datagrams_do_not_mix()
    {
        var a = WireGen.Fragment(WireGen.Ipv4Packet(Header with { Identification = 1 }, Enumerable.Repeat((byte)0xAA, 64).ToArray()), [32]);
        var b = WireGen.Fragment(WireGen.Ipv4Packet(Header with { Identification = 2 }, Enumerable.Repeat((byte)0xBB, 64).ToArray()), [32]);
        var reassembler = Create();
        Assert.Null(Feed(reassembler, [a[0], b[1]]));
        var resultB = Feed(reassembler, [b[0]]);
        var resultA = Feed(reassembler, [a[1]]);
        Assert.NotNull(resultA);
        Assert.NotNull(resultB);
        Assert.All(resultA[20..], x => Assert.Equal(0xAA, x));
        Assert.All(resultB[20..], x => Assert.Equal(0xBB, x));
    }
}
