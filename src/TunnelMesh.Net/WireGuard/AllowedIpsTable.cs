using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// Longest-prefix-match table from IPv4/IPv6 prefixes to values (peers), as WireGuard's allowed IPs:
/// outgoing packets find their peer by destination, incoming packets are checked against their
/// source. Inserting a prefix that is already present moves it to the new value.
/// </summary>
/// <remarks>
/// <para>
/// One path-compressed binary trie per family (like the kernel's <c>allowedips.c</c>): a node holds a
/// masked key and its prefix length, and branches on the first bit after it, so a lookup visits about
/// log2(n) nodes plus the nested prefixes on the way, not 32 or 128. Keys are kept as
/// <see cref="UInt128"/>, an IPv4 address in the top 32 bits, so both families share the code.
/// </para>
/// <para>
/// Concurrency: the nodes are immutable. Writers (rare: peer configuration) serialise on a lock and
/// build a new version by copying only the nodes on the path to the change (O(depth) small
/// allocations), then publish the new root with a release write. <see cref="Lookup"/> takes no lock
/// and allocates nothing: it reads the current root once and walks a version nobody will modify.
/// The two families have separate roots, so <see cref="RemoveAll"/> may be observed having updated
/// one family before the other.
/// </para>
/// <para>Values are compared with <see cref="EqualityComparer{T}.Default"/> (reference equality for peers).</para>
/// </remarks>
/// <typeparam name="T">The value type (a peer).</typeparam>
internal sealed class AllowedIpsTable<T> where T : class
{
    private readonly Lock _writeGate = new();
    private Node? _v4;
    private Node? _v6;

    /// <summary>How many prefixes the table holds (both families).</summary>
    public int Count
    {
        get
        {
            lock (_writeGate)
            {
                return CountValues(_v4) + CountValues(_v6);
            }
        }
    }

    /// <summary>
    /// Maps the prefix to <paramref name="value"/>; host bits of <paramref name="address"/> beyond
    /// <paramref name="prefixLength"/> are ignored. Replaces the value of an existing equal prefix.
    /// </summary>
    /// <param name="address">4 (IPv4) or 16 (IPv6) bytes in network order.</param>
    /// <param name="prefixLength">0..32 for IPv4, 0..128 for IPv6.</param>
    /// <param name="value">The value (peer).</param>
    public void Insert(ReadOnlySpan<byte> address, int prefixLength, T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var (key, maxBits) = ParsePrefix(address, prefixLength);
        lock (_writeGate)
        {
            if (maxBits == 32)
            {
                Volatile.Write(ref _v4, Insert(_v4, key, prefixLength, maxBits, value));
            }
            else
            {
                Volatile.Write(ref _v6, Insert(_v6, key, prefixLength, maxBits, value));
            }
        }
    }

    /// <summary>Removes the exact prefix (host bits ignored). Returns false if it was not present.</summary>
    /// <param name="address">4 (IPv4) or 16 (IPv6) bytes in network order.</param>
    /// <param name="prefixLength">0..32 for IPv4, 0..128 for IPv6.</param>
    public bool Remove(ReadOnlySpan<byte> address, int prefixLength)
    {
        var (key, maxBits) = ParsePrefix(address, prefixLength);
        lock (_writeGate)
        {
            ref Node? root = ref maxBits == 32 ? ref _v4 : ref _v6;
            var updated = RemoveFrom(root, key, prefixLength, out bool removed);
            if (removed)
            {
                Volatile.Write(ref root, updated);
            }

            return removed;
        }
    }

    /// <summary>Removes every prefix mapped to <paramref name="value"/> and returns how many there were.</summary>
    public int RemoveAll(T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        lock (_writeGate)
        {
            int removed = 0;
            Volatile.Write(ref _v4, RemoveAllFrom(_v4, value, ref removed));
            Volatile.Write(ref _v6, RemoveAllFrom(_v6, value, ref removed));
            return removed;
        }
    }

    /// <summary>
    /// The value of the longest prefix containing <paramref name="address"/> (4 or 16 bytes), or null
    /// if none does or the address has another length. Lock-free and allocation-free.
    /// </summary>
    public T? Lookup(ReadOnlySpan<byte> address)
    {
        Node? node;
        UInt128 key;
        if (address.Length == 4)
        {
            node = Volatile.Read(ref _v4);
            key = (UInt128)BinaryPrimitives.ReadUInt32BigEndian(address) << 96;
        }
        else if (address.Length == 16)
        {
            node = Volatile.Read(ref _v6);
            key = BinaryPrimitives.ReadUInt128BigEndian(address);
        }
        else
        {
            return null;
        }

        T? best = null;
        while (node is not null && ((key ^ node.Key) & node.Mask) == UInt128.Zero)
        {
            best = node.Value ?? best;
            node = (key & node.BranchBit) != UInt128.Zero ? node.One : node.Zero;
        }

        return best;
    }

    /// <summary>Every prefix mapped to <paramref name="value"/>: IPv4 ones first, each in address order.</summary>
    public IEnumerable<(byte[] Address, int PrefixLength)> EntriesFor(T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var result = new List<(byte[] Address, int PrefixLength)>();
        Collect(Volatile.Read(ref _v4), value, 32, result);
        Collect(Volatile.Read(ref _v6), value, 128, result);
        return result;
    }

    private static (UInt128 Key, int MaxBits) ParsePrefix(ReadOnlySpan<byte> address, int prefixLength)
    {
        int maxBits = address.Length switch
        {
            4 => 32,
            16 => 128,
            _ => ThrowBadAddressLength(),
        };
        ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, maxBits);
        UInt128 key = maxBits == 32
            ? (UInt128)BinaryPrimitives.ReadUInt32BigEndian(address) << 96
            : BinaryPrimitives.ReadUInt128BigEndian(address);
        return (key & MaskOf(prefixLength), maxBits);
    }

    [DoesNotReturn]
    private static int ThrowBadAddressLength() => throw new ArgumentException("An address has 4 (IPv4) or 16 (IPv6) bytes.", "address");

    private static UInt128 MaskOf(int bits) => bits == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - bits);

    /// <summary>Bit <paramref name="position"/> of <paramref name="key"/>, counted from the most significant (0).</summary>
    private static bool BitAt(UInt128 key, int position) => ((key >> (127 - position)) & UInt128.One) != UInt128.Zero;

    private static int CommonBits(UInt128 a, UInt128 b) => (int)UInt128.LeadingZeroCount(a ^ b);

    private static Node Insert(Node? node, UInt128 key, int bits, int maxBits, T value)
    {
        if (node is null)
        {
            return new Node(key, bits, maxBits, value, null, null);
        }

        int common = Math.Min(CommonBits(key, node.Key), Math.Min(bits, node.Bits));
        if (common == node.Bits && bits == node.Bits)
        {
            return node.WithValue(value);
        }

        if (common == node.Bits)
        {
            // The new prefix lies below this node.
            return BitAt(key, node.Bits)
                ? node.WithChildren(node.Zero, Insert(node.One, key, bits, maxBits, value))
                : node.WithChildren(Insert(node.Zero, key, bits, maxBits, value), node.One);
        }

        if (common == bits)
        {
            // The new prefix contains this node.
            return BitAt(node.Key, bits)
                ? new Node(key, bits, maxBits, value, null, node)
                : new Node(key, bits, maxBits, value, node, null);
        }

        // They diverge at bit 'common': a valueless branch node above both.
        var leaf = new Node(key, bits, maxBits, value, null, null);
        var branchKey = key & MaskOf(common);
        return BitAt(key, common)
            ? new Node(branchKey, common, maxBits, null, node, leaf)
            : new Node(branchKey, common, maxBits, null, leaf, node);
    }

    private static Node? RemoveFrom(Node? node, UInt128 key, int bits, out bool removed)
    {
        removed = false;
        if (node is null || bits < node.Bits || ((key ^ node.Key) & node.Mask) != UInt128.Zero)
        {
            return node;
        }

        if (bits == node.Bits)
        {
            if (node.Value is null)
            {
                return node;
            }

            removed = true;
            return Compact(node.Key, node.Bits, node.MaxBits, null, node.Zero, node.One);
        }

        if (BitAt(key, node.Bits))
        {
            var one = RemoveFrom(node.One, key, bits, out removed);
            return removed ? Compact(node.Key, node.Bits, node.MaxBits, node.Value, node.Zero, one) : node;
        }

        var zero = RemoveFrom(node.Zero, key, bits, out removed);
        return removed ? Compact(node.Key, node.Bits, node.MaxBits, node.Value, zero, node.One) : node;
    }

    private static Node? RemoveAllFrom(Node? node, T value, ref int removed)
    {
        if (node is null)
        {
            return null;
        }

        int before = removed;
        var zero = RemoveAllFrom(node.Zero, value, ref removed);
        var one = RemoveAllFrom(node.One, value, ref removed);
        var nodeValue = node.Value;
        if (nodeValue is not null && EqualityComparer<T>.Default.Equals(nodeValue, value))
        {
            nodeValue = null;
            removed++;
        }

        return removed == before ? node : Compact(node.Key, node.Bits, node.MaxBits, nodeValue, zero, one);
    }

    /// <summary>A node with these parts, or fewer nodes when a valueless node has less than two children.</summary>
    private static Node? Compact(UInt128 key, int bits, int maxBits, T? value, Node? zero, Node? one)
    {
        if (value is null)
        {
            if (zero is null)
            {
                return one;
            }

            if (one is null)
            {
                return zero;
            }
        }

        return new Node(key, bits, maxBits, value, zero, one);
    }

    private static void Collect(Node? node, T value, int maxBits, List<(byte[] Address, int PrefixLength)> result)
    {
        if (node is null)
        {
            return;
        }

        if (node.Value is not null && EqualityComparer<T>.Default.Equals(node.Value, value))
        {
            byte[] address;
            if (maxBits == 32)
            {
                address = new byte[4];
                BinaryPrimitives.WriteUInt32BigEndian(address, (uint)(node.Key >> 96));
            }
            else
            {
                address = new byte[16];
                BinaryPrimitives.WriteUInt128BigEndian(address, node.Key);
            }

            result.Add((address, node.Bits));
        }

        Collect(node.Zero, value, maxBits, result);
        Collect(node.One, value, maxBits, result);
    }

    private static int CountValues(Node? node) =>
        node is null ? 0 : (node.Value is null ? 0 : 1) + CountValues(node.Zero) + CountValues(node.One);

    /// <summary>An immutable trie node: a prefix, its value if it is an entry, and two children.</summary>
    private sealed class Node
    {
        public Node(UInt128 key, int bits, int maxBits, T? value, Node? zero, Node? one)
        {
            Key = key;
            Bits = bits;
            MaxBits = maxBits;
            Mask = MaskOf(bits);
            BranchBit = bits < maxBits ? UInt128.One << (127 - bits) : UInt128.Zero;
            Value = value;
            Zero = zero;
            One = one;
        }

        /// <summary>The prefix, host bits clear.</summary>
        public UInt128 Key { get; }

        public UInt128 Mask { get; }

        /// <summary>The single bit after the prefix that chooses the child (none for a full-length prefix).</summary>
        public UInt128 BranchBit { get; }

        public int Bits { get; }

        public int MaxBits { get; }

        /// <summary>The entry's value; null for a branch node that is not itself an entry.</summary>
        public T? Value { get; }

        public Node? Zero { get; }

        public Node? One { get; }

        public Node WithValue(T value) => new(Key, Bits, MaxBits, value, Zero, One);

        public Node WithChildren(Node? zero, Node? one) => new(Key, Bits, MaxBits, Value, zero, one);
    }
}
