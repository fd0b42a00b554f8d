using TunnelMesh.Net.Tests.Support;
using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.Units;

public class AllowedIpsTableTests
{
    private sealed record Peer(string Name);

    private static readonly Peer A = new("A");
    private static readonly Peer B = new("B");
    private static readonly Peer C = new("C");

    private static byte[] Ip(string text) => IPAddress.Parse(text).GetAddressBytes();

    [Fact]
    public void Longest_prefix_wins_IPv4()
    {
        var table = new AllowedIpsTable<Peer>();
        table.Insert(Ip("10.0.0.0"), 8, A);
        table.Insert(Ip("10.1.0.0"), 16, B);
        table.Insert(Ip("10.1.2.3"), 32, C);
        Assert.Same(A, table.Lookup(Ip("10.200.0.1")));
        Assert.Same(B, table.Lookup(Ip("10.1.200.1")));
        Assert.Same(C, table.Lookup(Ip("10.1.2.3")));
        Assert.Same(B, table.Lookup(Ip("10.1.2.4")));
        Assert.Null(table.Lookup(Ip("11.0.0.1")));
        Assert.Equal(3, table.Count);
    }

    [Fact]
    public void Longest_prefix_wins_IPv6_and_families_are_separate()
    {
        var table = new AllowedIpsTable<Peer>();
        table.Insert(Ip("::"), 0, A);
        table.Insert(Ip("fd7a:115c:a1e0::"), 48, B);
        table.Insert(Ip("fd7a:115c:a1e0:ab12::1"), 128, C);
        Assert.Same(A, table.Lookup(Ip("2001:db8::1")));
        Assert.Same(B, table.Lookup(Ip("fd7a:115c:a1e0:1::1")));
        Assert.Same(C, table.Lookup(Ip("fd7a:115c:a1e0:ab12::1")));
        Assert.Null(table.Lookup(Ip("10.0.0.1")));       // ::/0 is not an IPv4 default route
        table.Insert(Ip("0.0.0.0"), 0, B);
        Assert.Same(B, table.Lookup(Ip("10.0.0.1")));
        Assert.Same(A, table.Lookup(Ip("2001:db8::1")));
    }

    [Fact]
    public void Insert_masks_host_bits_and_an_existing_prefix_moves_to_the_new_value()
    {
        var table = new AllowedIpsTable<Peer>();
        table.Insert(Ip("192.168.77.9"), 20, A);
        var entry = Assert.Single(table.EntriesFor(A));
        Assert.Equal(Ip("192.168.64.0"), entry.Address);
        Assert.Equal(20, entry.PrefixLength);

        table.Insert(Ip("192.168.70.1"), 20, B); // the same /20
        Assert.Empty(table.EntriesFor(A));
        Assert.Single(table.EntriesFor(B));
        Assert.Same(B, table.Lookup(Ip("192.168.79.255")));
        Assert.Equal(1, table.Count);
    }

    [Fact]
    public void Remove_and_RemoveAll()
    {
        var table = new AllowedIpsTable<Peer>();
        table.Insert(Ip("10.0.0.0"), 8, A);
        table.Insert(Ip("10.1.0.0"), 16, B);
        table.Insert(Ip("10.2.0.0"), 16, B);
        table.Insert(Ip("fd00::"), 8, B);
        table.Insert(Ip("fd00:1::"), 32, A);

        Assert.False(table.Remove(Ip("10.1.0.0"), 17));
        Assert.True(table.Remove(Ip("10.1.99.0"), 16));
        Assert.False(table.Remove(Ip("10.1.0.0"), 16));
        Assert.Same(A, table.Lookup(Ip("10.1.0.1")));

        Assert.Equal(2, table.RemoveAll(B));
        Assert.Equal(0, table.RemoveAll(B));
        Assert.Same(A, table.Lookup(Ip("10.2.0.1")));
        Assert.Null(table.Lookup(Ip("fd00:2::1")));
        Assert.Same(A, table.Lookup(Ip("fd00:1::1")));
        Assert.Equal(2, table.EntriesFor(A).Count());
    }

    [Fact]
    public void Bad_input()
    {
        var table = new AllowedIpsTable<Peer>();
        table.Insert(Ip("0.0.0.0"), 0, A);
        Assert.Null(table.Lookup(new byte[5]));
        Assert.Null(table.Lookup(ReadOnlySpan<byte>.Empty));
        Assert.Throws<ArgumentException>(() => table.Insert(new byte[3], 8, A));
        Assert.Throws<ArgumentOutOfRangeException>(() => table.Insert(new byte[4], 33, A));
        Assert.Throws<ArgumentOutOfRangeException>(() => table.Insert(new byte[16], -1, A));
        Assert.Throws<ArgumentOutOfRangeException>(() => table.Remove(new byte[16], 129));
    }

    [Fact]
    public void Lookup_does_not_allocate()
    {
        var table = new AllowedIpsTable<Peer>();
        var random = new Random(7);
        var bytes4 = new byte[4];
        var bytes16 = new byte[16];
        for (int i = 0; i < 2000; i++)
        {
            random.NextBytes(bytes4);
            random.NextBytes(bytes16);
            table.Insert(bytes4, random.Next(33), A);
            table.Insert(bytes16, random.Next(129), B);
        }

        Allocations.AssertNonePerCall(50_000, i =>
        {
            bytes4[i & 3] ^= (byte)i;
            bytes16[i & 15] ^= (byte)i;
            table.Lookup(bytes4);
            table.Lookup(bytes16);
        }, "allowed-IPs lookups");
    }

    [Fact]
    public async Task Readers_see_a_consistent_table_while_a_writer_churns()
    {
        var table = new AllowedIpsTable<Peer>();
        table.Insert(Ip("100.64.0.0"), 10, A);
        using var stop = new CancellationTokenSource();
        int wrong = 0;
        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            var probe = Ip("100.100.1.1");
            while (!stop.IsCancellationRequested)
            {
                var peer = table.Lookup(probe);
                if (peer != A && peer != B)
                {
                    Interlocked.Increment(ref wrong);
                }
            }
        })).ToArray();

        var random = new Random(3);
        var address = new byte[4];
        for (int i = 0; i < 20_000; i++)
        {
            address[0] = 100;
            address[1] = (byte)(64 + random.Next(64));
            address[2] = (byte)random.Next(256);
            address[3] = (byte)random.Next(256);
            int length = 11 + random.Next(22);
            if (random.Next(2) == 0)
            {
                table.Insert(address, length, B);
            }
            else
            {
                table.Remove(address, length);
            }
        }

        await stop.CancelAsync();
        await Task.WhenAll(readers);
        Assert.Equal(0, wrong);
    }

    // ---- Property: agrees with a linear scan ----

    /// <summary>One operation on the table; prefixes are drawn near a few bases so they nest and collide.</summary>
    public readonly record struct Op(int Kind, bool V6, byte[] Address, int Length, int Value);

    private static readonly Peer[] Peers = [new("p0"), new("p1"), new("p2"), new("p3"), new("p4")];

    private static Gen<byte[]> AddressGen(bool v6)
    {
        int size = v6 ? 16 : 4;
        // Mostly share a few leading bytes so prefixes nest; sometimes fully random.
        var bases = new[] { new byte[] { 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 }, new byte[] { 0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 } };
        return (from which in Gen.Choose(0, 1)
                from keepBits in Gen.Choose(0, size * 8)
                from noise in Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b), size)
                select (which, keepBits, noise))
            .Select(t =>
            {
                var (which, keepBits, noise) = t;
                var result = new byte[size];
                Array.Copy(bases[which], result, size);
                for (int bit = keepBits; bit < size * 8; bit++)
                {
                    int mask = 0x80 >> (bit & 7);
                    result[bit >> 3] = (byte)((result[bit >> 3] & ~mask) | (noise[bit >> 3] & mask));
                }

                return result;
            });
    }

    private static Gen<Op> OpGen() =>
        from v6 in Gen.Elements(false, true)
        from kind in Gen.Frequency((7, Gen.Constant(0)), (2, Gen.Constant(1)), (1, Gen.Constant(2)))
        from address in AddressGen(v6)
        from length in Gen.Choose(0, v6 ? 128 : 32)
        from value in Gen.Choose(0, Peers.Length - 1)
        select new Op(kind, v6, address, length, value);

    private static bool Matches(byte[] prefix, int length, byte[] address)
    {
        if (prefix.Length != address.Length)
        {
            return false;
        }

        for (int bit = 0; bit < length; bit++)
        {
            int mask = 0x80 >> (bit & 7);
            if ((prefix[bit >> 3] & mask) != (address[bit >> 3] & mask))
            {
                return false;
            }
        }

        return true;
    }

    private static byte[] Masked(byte[] address, int length)
    {
        var result = new byte[address.Length];
        for (int bit = 0; bit < length; bit++)
        {
            int mask = 0x80 >> (bit & 7);
            result[bit >> 3] |= (byte)(address[bit >> 3] & mask);
        }

        return result;
    }

    private sealed class LinearModel
    {
        public List<(byte[] Prefix, int Length, Peer Value)> Entries { get; } = new();

        private int IndexOf(byte[] address, int length) =>
            Entries.FindIndex(e => e.Length == length && e.Prefix.AsSpan().SequenceEqual(Masked(address, length)));

        public void Insert(byte[] address, int length, Peer value)
        {
            int i = IndexOf(address, length);
            if (i >= 0)
            {
                Entries.RemoveAt(i);
            }

            Entries.Add((Masked(address, length), length, value));
        }

        public bool Remove(byte[] address, int length)
        {
            int i = IndexOf(address, length);
            if (i >= 0)
            {
                Entries.RemoveAt(i);
            }

            return i >= 0;
        }

        public int RemoveAll(Peer value) => Entries.RemoveAll(e => e.Value == value);

        public Peer? Lookup(byte[] address)
        {
            Peer? best = null;
            int bestLength = -1;
            foreach (var e in Entries)
            {
                if (e.Length > bestLength && Matches(e.Prefix, e.Length, address))
                {
                    best = e.Value;
                    bestLength = e.Length;
                }
            }

            return best;
        }
    }

    [Property(MaxTest = 300, EndSize = 200)]
    public Property Agrees_with_a_linear_scan()
    {
        var scenario = Gen.Zip(OpGen().ListOf().Select(l => l.ToArray()),
                               Gen.Zip(Gen.Elements(false, true), Gen.Choose(0, 1)).SelectMany(t => AddressGen(t.Item1)).ListOf().Select(l => l.ToArray()));
        var property = Prop.ForAll(Arb.From(scenario), s =>
        {
            var (ops, probes) = s;
            var table = new AllowedIpsTable<Peer>();
            var model = new LinearModel();
            foreach (var op in ops)
            {
                var peer = Peers[op.Value];
                switch (op.Kind)
                {
                    case 0:
                        table.Insert(op.Address, op.Length, peer);
                        model.Insert(op.Address, op.Length, peer);
                        break;
                    case 1:
                        if (table.Remove(op.Address, op.Length) != model.Remove(op.Address, op.Length))
                        {
                            return false;
                        }

                        break;
                    default:
                        if (table.RemoveAll(peer) != model.RemoveAll(peer))
                        {
                            return false;
                        }

                        break;
                }
            }

            // Probe random addresses and every inserted prefix's own address.
            foreach (var address in probes.Concat(ops.Select(o => o.Address)))
            {
                if (!ReferenceEquals(table.Lookup(address), model.Lookup(address)))
                {
                    return false;
                }
            }

            foreach (var peer in Peers)
            {
                var expected = model.Entries.Where(e => e.Value == peer).Select(e => Convert.ToHexString(e.Prefix) + "/" + e.Length).Order();
                var actual = table.EntriesFor(peer).Select(e => Convert.ToHexString(e.Address) + "/" + e.PrefixLength).Order();
                if (!expected.SequenceEqual(actual))
                {
                    return false;
                }
            }

            return table.Count == model.Entries.Count;
        });
        return property;
    }
}
