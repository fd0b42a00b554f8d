using TunnelMesh.Net.Server.AspNetCore;

namespace TunnelMesh.Net.Server.Tests.AspNetCore;

/// <summary>The mesh transport's pipe memory: blocks are reused, retention is capped, a double dispose returns a block once.</summary>
public sealed class BlockMemoryPoolTests
{
    [Fact]
    public void Returned_blocks_are_reused_and_the_free_list_is_capped()
    {
        using var pool = new BlockMemoryPool(maxRetained: 2);
        var blocks = Enumerable.Range(0, 3).Select(_ => pool.Rent(BlockMemoryPool.BlockSize)).ToList();
        Assert.Equal(3, pool.Created);
        Assert.All(blocks, b => Assert.Equal(BlockMemoryPool.BlockSize, b.Memory.Length));
        var first = blocks[0];
        foreach (var b in blocks)
        {
            b.Dispose();
        }

        first.Dispose(); // twice: must not enter the free list again
        Assert.Equal(2, pool.Retained); // the third was left to the GC
        var again = new[] { pool.Rent(), pool.Rent(), pool.Rent() };
        Assert.Equal(4, pool.Created); // two reused, one new
        Assert.Equal(0, pool.Retained);
        Assert.Equal(3, again.Distinct().Count());
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(BlockMemoryPool.BlockSize + 1));
    }
}
