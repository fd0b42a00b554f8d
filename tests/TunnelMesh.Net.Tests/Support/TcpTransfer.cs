using System.Diagnostics;
using System.Security.Cryptography;

namespace TunnelMesh.Net.Tests.Support;

/// <summary>
/// Bulk data over any stream without holding it in memory: the sender writes a seeded
/// pseudo-random byte stream and hashes what it wrote; the receiver hashes what it reads. Equal
/// SHA-256 values on both sides mean every byte arrived once, in order.
/// </summary>
internal static class TcpTransfer
{
    private const int ChunkSize = 256 * 1024;

    /// <summary>What one side of a transfer saw.</summary>
    public readonly record struct Outcome(long Bytes, byte[] Sha256, TimeSpan Elapsed)
    {
        /// <summary>Throughput in Mbit/s (a figure for the test output, never asserted).</summary>
        public double Mbps => Elapsed > TimeSpan.Zero ? Bytes * 8 / Elapsed.TotalSeconds / 1e6 : 0;

        public override string ToString() => $"{Bytes / (1 << 20)} MiB in {Elapsed.TotalSeconds:0.00} s = {Mbps:0} Mbit/s";
    }

    /// <summary>Writes <paramref name="bytes"/> seeded pseudo-random bytes; optionally half-closes afterwards.</summary>
    public static async Task<Outcome> SendAsync(Stream stream, long bytes, int seed, Func<Task>? afterLastWrite = null, CancellationToken cancellationToken = default)
    {
        var random = new Random(seed);
        var chunk = new byte[ChunkSize];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var watch = Stopwatch.StartNew();
        long left = bytes;
        while (left > 0)
        {
            int n = (int)Math.Min(left, chunk.Length);
            random.NextBytes(chunk.AsSpan(0, n));
            hash.AppendData(chunk, 0, n);
            await stream.WriteAsync(chunk.AsMemory(0, n), cancellationToken);
            left -= n;
        }

        if (afterLastWrite is not null)
        {
            await afterLastWrite();
        }

        return new Outcome(bytes, hash.GetHashAndReset(), watch.Elapsed);
    }

    /// <summary>Reads until end of stream (or, with <paramref name="exactly"/>, until that many bytes arrived) and hashes what came.</summary>
    public static async Task<Outcome> ReceiveAsync(Stream stream, long? exactly = null, CancellationToken cancellationToken = default)
    {
        var buffer = new byte[ChunkSize];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var watch = Stopwatch.StartNew();
        long total = 0;
        while (exactly is not { } limit || total < limit)
        {
            int want = exactly is { } l ? (int)Math.Min(buffer.Length, l - total) : buffer.Length;
            int n = await stream.ReadAsync(buffer.AsMemory(0, want), cancellationToken);
            if (n == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, n);
            total += n;
        }

        return new Outcome(total, hash.GetHashAndReset(), watch.Elapsed);
    }

    /// <summary>Reads to end of stream and returns all of it (small transfers).</summary>
    public static async Task<byte[]> ReadToEndAsync(Stream stream, CancellationToken cancellationToken = default)
    {
        var output = new MemoryStream();
        await stream.CopyToAsync(output, cancellationToken);
        return output.ToArray();
    }

    /// <summary>Asserts that both sides saw the same number of bytes and the same hash.</summary>
    public static void AssertSame(Outcome sent, Outcome received, string what)
    {
        Assert.True(sent.Bytes == received.Bytes, $"{what}: sent {sent.Bytes} bytes, received {received.Bytes}");
        Assert.True(sent.Sha256.AsSpan().SequenceEqual(received.Sha256), $"{what}: SHA-256 differs ({Convert.ToHexString(sent.Sha256)} sent, {Convert.ToHexString(received.Sha256)} received)");
    }
}
