using System.Buffers.Binary;
using System.Collections.Concurrent;

namespace TunnelMesh.Net.Transport;

/// <summary>A 32-byte public key as a value, for lookups straight from frame bytes (no allocation).</summary>
internal readonly record struct RelayKey(UInt128 High, UInt128 Low)
{
    /// <summary>Reads a key from the first 32 bytes of <paramref name="bytes"/>.</summary>
    public static RelayKey Read(ReadOnlySpan<byte> bytes) =>
        new(BinaryPrimitives.ReadUInt128BigEndian(bytes), BinaryPrimitives.ReadUInt128BigEndian(bytes[16..]));

    /// <summary>The key of a node.</summary>
    public static RelayKey From(NodePublicKey key) => Read(key.Bytes);

    /// <summary>Writes the 32 key bytes.</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt128BigEndian(destination, High);
        BinaryPrimitives.WriteUInt128BigEndian(destination[16..], Low);
    }
}

/// <summary>
/// The relay transport's peer slots: a public key gets a small number once and keeps it, so that a
/// relay path fits an <see cref="Endpoint"/> (<see cref="Endpoint.ForRelay"/>). Lookups both ways are
/// lock-free and allocation-free; adding takes a lock. Bounded: past <see cref="MaxSlots"/> keys, new
/// ones get no slot (their frames are dropped).
/// </summary>
internal sealed class RelayPeerTable
{
    /// <summary>Most keys the table numbers.</summary>
    public const int MaxSlots = 1 << 20;

    private readonly ConcurrentDictionary<RelayKey, uint> _slots = new();
    private readonly Lock _gate = new();
    private RelayKey[] _keys = new RelayKey[16];
    private int _count;

    /// <summary>The slot of <paramref name="key"/>, numbering it if it is new; false when the table is full.</summary>
    public bool TryGetOrAdd(RelayKey key, out uint slot)
    {
        if (_slots.TryGetValue(key, out slot))
        {
            return true;
        }

        lock (_gate)
        {
            if (_slots.TryGetValue(key, out slot))
            {
                return true;
            }

            if (_count >= MaxSlots)
            {
                return false;
            }

            var keys = _keys;
            if (_count == keys.Length)
            {
                Array.Resize(ref keys, keys.Length * 2);
            }

            keys[_count] = key;
            Volatile.Write(ref _keys, keys);
            slot = (uint)_count;
            Volatile.Write(ref _count, _count + 1);
            _slots[key] = slot;
            return true;
        }
    }

    /// <summary>The key in <paramref name="slot"/>.</summary>
    public bool TryGetKey(uint slot, out RelayKey key)
    {
        // Count first: the writer publishes the array before the count.
        int count = Volatile.Read(ref _count);
        var keys = Volatile.Read(ref _keys);
        if (slot < (uint)count && slot < (uint)keys.Length)
        {
            key = keys[slot];
            return true;
        }

        key = default;
        return false;
    }
}
