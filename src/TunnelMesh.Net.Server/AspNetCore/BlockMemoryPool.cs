using System.Buffers;
using System.Collections.Concurrent;

namespace TunnelMesh.Net.Server.AspNetCore;

/// <summary>
/// The mesh transport's pipe memory: fixed 4 KiB blocks that go back to a free list when a pipe is done
/// with them, as Kestrel's socket transport does with its own pool. The shared array pool keeps only a
/// few dozen arrays per size, while one connection may buffer 1 MiB (256 blocks) of a request body, so
/// with it most blocks of a large upload were dropped and allocated again.
/// </summary>
internal sealed class BlockMemoryPool : MemoryPool<byte>
{
    public const int BlockSize = 4096;

    private readonly ConcurrentQueue<Block> _free = new();
    private readonly int _maxRetained;
    private int _retained;
    private long _created;

    /// <param name="maxRetained">The most free blocks kept; more returned blocks are left to the GC.</param>
    public BlockMemoryPool(int maxRetained) => _maxRetained = maxRetained;

    public override int MaxBufferSize => BlockSize;

    /// <summary>Blocks allocated so far (flat once the pool holds its working set).</summary>
    public long Created => Interlocked.Read(ref _created);

    /// <summary>Free blocks held now.</summary>
    public int Retained => Volatile.Read(ref _retained);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        if (_free.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _retained);
            block.Lease();
            return block;
        }

        Interlocked.Increment(ref _created);
        return new Block(this);
    }

    private void Return(Block block)
    {
        if (Interlocked.Increment(ref _retained) <= _maxRetained)
        {
            _free.Enqueue(block);
        }
        else
        {
            Interlocked.Decrement(ref _retained);
        }
    }

    protected override void Dispose(bool disposing)
    {
        // Static and process-wide: nothing to release; blocks are ordinary arrays.
    }

    private sealed class Block(BlockMemoryPool pool) : IMemoryOwner<byte>
    {
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);
        private int _leased = 1;

        public Memory<byte> Memory => _array;

        public void Lease() => Volatile.Write(ref _leased, 1);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _leased, 0) == 1)
            {
                pool.Return(this);
            }
        }
    }
}
