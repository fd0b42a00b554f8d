using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Socks;

namespace TunnelMesh.Net.HttpBench;

/// <summary>
/// Everything the clients talk to, in this process: node A and node B (static WireGuard peers over 127.0.0.1 UDP),
/// the app served by Kestrel on A's mesh address and on 127.0.0.1:0, and (for the socks path) B's SOCKS5 proxy.
/// </summary>
internal sealed class BenchHost : IAsyncDisposable
{
    public const int SmallSize = 64;
    public static readonly IPAddress AddressA = IPAddress.Parse("100.64.0.1");
    public static readonly IPAddress AddressB = IPAddress.Parse("100.64.0.2");
    private const int ChunkSize = 64 * 1024;
    private static readonly byte[] Small = CreateBody(SmallSize);
    private static readonly byte[] Chunk = CreateBody(ChunkSize);

    private readonly MeshNode _a;
    private readonly MeshNode _b;
    private readonly WebApplication _app;
    private readonly MeshSocks5Server? _socks;

    private BenchHost(MeshNode a, MeshNode b, WebApplication app, MeshSocks5Server? socks, Uri loopback)
    {
        _a = a;
        _b = b;
        _app = app;
        _socks = socks;
        LoopbackUri = loopback;
    }

    /// <summary>The app on Kestrel's socket transport: http://127.0.0.1:port/.</summary>
    public Uri LoopbackUri { get; }

    /// <summary>The app on node A's mesh address: http://100.64.0.1/.</summary>
    public static Uri MeshUri { get; } = new("http://100.64.0.1/");

    public static async Task<BenchHost> StartAsync(bool socks, CancellationToken cancellationToken)
    {
        var keyA = NodePrivateKey.Generate();
        var keyB = NodePrivateKey.Generate();
        MeshNode? a = null, b = null;
        WebApplication? app = null;
        MeshSocks5Server? proxy = null;
        try
        {
            // A (the server) starts first and learns B's endpoint from B's handshake; B is given A's UDP port.
            a = new MeshNode(BenchNodes.Options(keyA, AddressA, keyB.PublicKey, AddressB, null));
            await a.StartAsync(cancellationToken);
            b = new MeshNode(BenchNodes.Options(keyB, AddressB, keyA.PublicKey, AddressA, new IPEndPoint(IPAddress.Loopback, a.ListenPort)));
            await b.StartAsync(cancellationToken);

            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
            builder.Logging.ClearProviders();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Logging.AddSimpleConsole(c => c.SingleLine = true);
            builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(c => c.LogToStandardErrorThreshold = LogLevel.Trace);
            builder.Services.Configure<KestrelServerOptions>(k => k.Limits.MaxRequestBodySize = null);
            builder.WebHost.UseMesh(o =>
            {
                o.Node = a;
                o.Port = 80;
                o.AlsoListen(new IPEndPoint(IPAddress.Loopback, 0));
            });
            app = builder.Build();
            app.MapGet("/small", (HttpContext http) => WriteAsync(http.Response, Small));
            app.MapGet("/bytes/{n:long}", (HttpContext http, long n) => StreamAsync(http, n));
            app.MapPost("/sink", (HttpContext http) => SinkAsync(http));
            await app.StartAsync(cancellationToken);

            var addresses = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            string local = addresses.FirstOrDefault(x => x.StartsWith("http://127.0.0.1:", StringComparison.Ordinal))
                ?? throw new BenchFailedException($"Kestrel has no 127.0.0.1 endpoint (addresses: {string.Join(", ", addresses)})");

            if (socks)
            {
                proxy = new MeshSocks5Server(b, new MeshSocks5Options { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) });
                await proxy.StartAsync(cancellationToken);
            }

            var host = new BenchHost(a, b, app, proxy, new Uri(local + "/"));
            (a, b, app, proxy) = (null, null, null, null);
            return host;
        }
        finally
        {
            if (proxy is not null)
            {
                await proxy.DisposeAsync();
            }

            if (app is not null)
            {
                await app.DisposeAsync();
            }

            if (a is not null)
            {
                await a.DisposeAsync();
            }

            if (b is not null)
            {
                await b.DisposeAsync();
            }
        }
    }

    /// <summary>The client for <paramref name="path"/>; <paramref name="maxConnections"/> bounds its connection pool.</summary>
    public HttpClient CreateClient(ClientPath path, int maxConnections)
    {
        SocketsHttpHandler handler = path switch
        {
            ClientPath.Mesh => _b.CreateHttpMessageHandler(),
            ClientPath.Socks => new SocketsHttpHandler
            {
                Proxy = new WebProxy(new Uri($"socks5://{_socks?.LocalEndPoint ?? throw new InvalidOperationException("no SOCKS5 proxy")}")),
                UseProxy = true,
            },
            _ => new SocketsHttpHandler { UseProxy = false },
        };
        handler.MaxConnectionsPerServer = maxConnections;
        handler.PooledConnectionIdleTimeout = TimeSpan.FromMinutes(10);
        return new HttpClient(handler, disposeHandler: true)
        {
            BaseAddress = path == ClientPath.Loopback ? LoopbackUri : MeshUri,
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>Both nodes together: WireGuard transport bytes sent (headers, TCP/IP and ACKs included) and packets dropped.</summary>
    public (long SentBytes, long Drops) MeshCounters()
    {
        long sent = 0, drops = 0;
        foreach (MeshNode node in (ReadOnlySpan<MeshNode>)[_a, _b])
        {
            MeshNodeStatistics s = node.GetStatistics();
            drops += s.TotalDrops;
            foreach (MeshPeerStatistics p in s.Peers)
            {
                sent += p.SentBytes;
            }
        }

        return (sent, drops);
    }

    /// <summary>Both nodes' drops so far by reason (only the reasons seen).</summary>
    public SortedDictionary<string, long> DropsByReason()
    {
        var drops = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (MeshNode node in (ReadOnlySpan<MeshNode>)[_a, _b])
        {
            foreach (var (reason, count) in node.GetStatistics().Drops)
            {
                if (count > 0)
                {
                    drops[reason.ToString()] = drops.GetValueOrDefault(reason.ToString()) + count;
                }
            }
        }

        return drops;
    }

    public async ValueTask DisposeAsync()
    {
        if (_socks is not null)
        {
            await _socks.DisposeAsync();
        }

        await _app.StopAsync();
        await _app.DisposeAsync();
        await _a.DisposeAsync();
        await _b.DisposeAsync();
    }

    private static byte[] CreateBody(int size)
    {
        var body = new byte[size];
        for (int i = 0; i < body.Length; i++)
        {
            body[i] = (byte)('a' + (i % 26));
        }

        return body;
    }

    private static Task WriteAsync(HttpResponse response, byte[] body)
    {
        response.ContentType = "application/octet-stream";
        response.ContentLength = body.Length;
        return response.Body.WriteAsync(body).AsTask();
    }

    /// <summary>GET /bytes/{n}: n bytes, written 64 KiB at a time from one shared buffer.</summary>
    private static async Task StreamAsync(HttpContext http, long n)
    {
        if (n < 0)
        {
            http.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        http.Response.ContentType = "application/octet-stream";
        http.Response.ContentLength = n;
        CancellationToken aborted = http.RequestAborted;
        for (long left = n; left > 0;)
        {
            int count = (int)Math.Min(left, Chunk.Length);
            await http.Response.Body.WriteAsync(Chunk.AsMemory(0, count), aborted);
            left -= count;
        }
    }

    /// <summary>POST /sink: reads the body straight from Kestrel's pipe (no copy) and answers with its length.</summary>
    private static async Task SinkAsync(HttpContext http)
    {
        PipeReader reader = http.Request.BodyReader;
        long total = 0;
        while (true)
        {
            ReadResult read = await reader.ReadAsync(http.RequestAborted);
            total += read.Buffer.Length;
            reader.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                break;
            }
        }

        http.Response.ContentType = "text/plain";
        await http.Response.WriteAsync(total.ToString(CultureInfo.InvariantCulture), http.RequestAborted);
    }
}
