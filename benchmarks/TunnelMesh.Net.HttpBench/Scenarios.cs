using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace TunnelMesh.Net.HttpBench;

/// <summary>The client side of each scenario: bounded in count and by a deadline, checking every answer.</summary>
internal static class Scenarios
{
    private static readonly Uri SmallPath = new("small", UriKind.Relative);
    private static readonly Uri SinkPath = new("sink", UriKind.Relative);

    /// <summary>Up to <paramref name="count"/> small GETs one after another; each one's latency in µs.</summary>
    public static async Task<(int Done, List<double> Latencies)> SequentialAsync(HttpClient client, int count, long deadline, CancellationToken cancellationToken)
    {
        var latencies = new List<double>(count);
        var buffer = new byte[4096];
        while (latencies.Count < count && Stopwatch.GetTimestamp() < deadline)
        {
            long start = Stopwatch.GetTimestamp();
            await SmallGetAsync(client, buffer, cancellationToken);
            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
        }

        return (latencies.Count, latencies);
    }

    /// <summary>Up to <paramref name="count"/> small GETs shared out among <paramref name="concurrency"/> workers; each one's latency in µs.</summary>
    public static async Task<(int Done, List<double> Latencies)> ConcurrentAsync(HttpClient client, int count, int concurrency, long deadline, CancellationToken cancellationToken)
    {
        int next = 0;
        async Task<List<double>> Worker()
        {
            var latencies = new List<double>(count / concurrency + 1);
            var buffer = new byte[4096];
            while (Stopwatch.GetTimestamp() < deadline && Interlocked.Increment(ref next) <= count)
            {
                long start = Stopwatch.GetTimestamp();
                await SmallGetAsync(client, buffer, cancellationToken).ConfigureAwait(false);
                latencies.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
            }

            return latencies;
        }

        var workers = new Task<List<double>>[concurrency];
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = Task.Run(Worker, cancellationToken);
        }

        List<double>[] each = await Task.WhenAll(workers);
        var all = new List<double>(count);
        foreach (var l in each)
        {
            all.AddRange(l);
        }

        return (all.Count, all);
    }

    /// <summary>GET /bytes/{n}, read to the end: the bytes read (fewer only when cancelled).</summary>
    public static async Task<long> DownloadAsync(HttpClient client, long bytes, CancellationToken cancellationToken)
    {
        using var response = await client.GetAsync(new Uri("bytes/" + bytes.ToString(CultureInfo.InvariantCulture), UriKind.Relative), HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        Check(response, "GET /bytes");
        await using Stream body = await response.Content.ReadAsStreamAsync(cancellationToken);
        var buffer = new byte[256 * 1024];
        long total = 0;
        int n;
        while ((n = await body.ReadAsync(buffer, cancellationToken)) > 0)
        {
            total += n;
        }

        return total == bytes ? total : throw new BenchFailedException($"GET /bytes/{bytes} returned {total} bytes");
    }

    /// <summary>POST /sink with <paramref name="bytes"/> bytes: the count the server read.</summary>
    public static async Task<long> UploadAsync(HttpClient client, long bytes, CancellationToken cancellationToken)
    {
        using var content = new RepeatedContent(bytes);
        using var response = await client.PostAsync(SinkPath, content, cancellationToken);
        Check(response, "POST /sink");
        string text = await response.Content.ReadAsStringAsync(cancellationToken);
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long read) && read == bytes
            ? read
            : throw new BenchFailedException($"POST /sink of {bytes} bytes: the server read '{text}'");
    }

    private static async Task SmallGetAsync(HttpClient client, byte[] buffer, CancellationToken cancellationToken)
    {
        using var response = await client.GetAsync(SmallPath, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        Check(response, "GET /small");
        await using Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        int total = 0, n;
        while ((n = await body.ReadAsync(buffer.AsMemory(total), cancellationToken).ConfigureAwait(false)) > 0)
        {
            total += n;
        }

        if (total != BenchHost.SmallSize)
        {
            throw new BenchFailedException($"GET /small returned {total} bytes, not {BenchHost.SmallSize}");
        }
    }

    private static void Check(HttpResponseMessage response, string what)
    {
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new BenchFailedException($"{what}: {(int)response.StatusCode} {response.ReasonPhrase}");
        }
    }

    /// <summary>A request body of a given length, written 256 KiB at a time from one buffer (with a Content-Length).</summary>
    private sealed class RepeatedContent(long length) : HttpContent
    {
        private static readonly byte[] Chunk = CreateChunk();

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            for (long left = length; left > 0;)
            {
                int n = (int)Math.Min(left, Chunk.Length);
                await stream.WriteAsync(Chunk.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                left -= n;
            }
        }

        protected override bool TryComputeLength(out long length1)
        {
            length1 = length;
            return true;
        }

        private static byte[] CreateChunk()
        {
            var chunk = new byte[256 * 1024];
            for (int i = 0; i < chunk.Length; i++)
            {
                chunk[i] = (byte)i;
            }

            return chunk;
        }
    }
}
