using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Control;

namespace TunnelMesh.Net.Server.Tests.Support;

/// <summary>
/// A small stand-in for the coordinator (Kestrel on 127.0.0.1): POST /api/v1/join, the GET
/// /api/v1/map WebSocket (a snapshot, then deltas) and PUT /api/v1/nodes/self/endpoints, speaking
/// the contract records. A join upserts the node and pushes a delta to every stream; tests push
/// their own messages with <see cref="RemoveNodeAsync"/> and <see cref="PushAsync"/>.
/// </summary>
public sealed class FakeControlServer : IAsyncDisposable
{
    public const string ValidAuthKey = "tmkey-1-fakesecretfakesecret";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<string, Node> _nodes = new(StringComparer.Ordinal); // by public key
    private readonly ConcurrentDictionary<Guid, Stream> _streams = new();
    private readonly Lock _gate = new();
    private long _version;
    private int _nextHost;
    private int _disposed;

    private FakeControlServer(WebApplication app) => _app = app;

    public Uri Url { get; private set; } = null!;

    public string DnsSuffix { get; init; } = "tunnelmesh";

    /// <summary>When set, every join is refused with 401 and this problem detail.</summary>
    public string? RefuseJoinsWith { get; set; }

    /// <summary>Node tokens handed out, for checking they never reach a log.</summary>
    public IReadOnlyCollection<string> Tokens => _nodes.Values.Select(n => n.Token).ToArray();

    private int _joins;

    /// <summary>Successful joins so far.</summary>
    public int Joins => Volatile.Read(ref _joins);

    /// <summary>Starts a server on 127.0.0.1:<paramref name="port"/> (0: any), knowing the nodes of <paramref name="restoreFrom"/> (a coordinator restart).</summary>
    public static async Task<FakeControlServer> StartAsync(int port = 0, FakeControlServer? restoreFrom = null, ILoggerProvider? logs = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, port));
        builder.Logging.ClearProviders();
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
        }

        var app = builder.Build();
        var server = new FakeControlServer(app);
        if (restoreFrom is not null)
        {
            foreach (var (key, node) in restoreFrom._nodes)
            {
                server._nodes[key] = node;
            }

            server._nextHost = restoreFrom._nextHost;
            server._version = restoreFrom._version;
        }
        app.UseWebSockets();
        app.MapPost("/api/v1/join", server.JoinAsync);
        app.Map("/api/v1/map", server.MapAsync);
        app.MapPut("/api/v1/nodes/self/endpoints", server.UpdateEndpointsAsync);
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.Url = new Uri(address);
        return server;
    }

    /// <summary>The endpoints a node last reported (by join or PUT).</summary>
    /// <summary>Whether the node with this key asked to be ephemeral when it joined (null: not joined).</summary>
    public bool? EphemeralOf(NodePublicKey key) => _nodes.TryGetValue(key.ToString(), out var n) ? n.Info.Ephemeral : null;

    public IReadOnlyList<string> EndpointsOf(NodePublicKey key) => _nodes.TryGetValue(key.ToString(), out var n) ? n.Info.Endpoints : [];

    /// <summary>How many map streams are open.</summary>
    public int StreamCount => _streams.Count;

    /// <summary>Deletes a node and pushes the removal to every stream.</summary>
    public Task RemoveNodeAsync(NodePublicKey key)
    {
        _nodes.TryRemove(key.ToString(), out _);
        return PushAsync(new PeerMapMessage(PeerMapMessageType.Delta, Interlocked.Increment(ref _version), Removed: [key.ToString()]));
    }

    /// <summary>Drops every open map stream (as a coordinator crash or a load balancer would).</summary>
    public void DropStreams()
    {
        foreach (var stream in _streams.Values)
        {
            stream.Queue.Writer.TryComplete(new IOException("dropped by the test"));
        }
    }

    /// <summary>Pushes a delta that upserts <paramref name="info"/> as it is (no checks: a coordinator that let a bad key in).</summary>
    public Task UpsertRawAsync(MeshNodeInfo info) =>
        PushAsync(new PeerMapMessage(PeerMapMessageType.Delta, Interlocked.Increment(ref _version), Upserted: [info]));

    /// <summary>Sends a message to every open map stream.</summary>
    public Task PushAsync(PeerMapMessage message)
    {
        foreach (var stream in _streams.Values)
        {
            stream.Queue.Writer.TryWrite(message);
        }

        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _stopping.Dispose();
    }

    private async Task<IResult> JoinAsync(JoinRequest request)
    {
        if (RefuseJoinsWith is { } reason)
        {
            return Results.Problem(detail: reason, statusCode: StatusCodes.Status401Unauthorized, title: "Join refused");
        }

        if (!NodePublicKey.TryParse(request.NodeKey, out _))
        {
            return Results.Problem(detail: "nodeKey is not a public key", statusCode: StatusCodes.Status400BadRequest);
        }

        Node node;
        lock (_gate)
        {
            _nodes.TryGetValue(request.NodeKey, out var existing);
            bool tokenOk = request.NodeToken is not null && existing is not null && existing.Token == request.NodeToken;
            if (!tokenOk && request.AuthKey != ValidAuthKey)
            {
                return Results.Problem(detail: request.AuthKey is null ? "the node token is not valid" : "the auth key is not valid", statusCode: StatusCodes.Status401Unauthorized);
            }

            int host = existing is not null ? existing.Host : ++_nextHost;
            string name = existing?.Info.Name ?? request.Hostname.ToLowerInvariant();
            var info = new MeshNodeInfo(
                host,
                name,
                name + "." + DnsSuffix,
                request.NodeKey,
                [$"100.64.0.{host}", $"fd7a:115c:a1e0::{host:x}"],
                request.Endpoints ?? [],
                [],
                request.Ephemeral,
                true,
                DateTimeOffset.UtcNow,
                existing?.Info.Created ?? DateTimeOffset.UtcNow,
                false);
            node = new Node(host, existing?.Token ?? "tmnode-" + Guid.NewGuid().ToString("N"), info);
            _nodes[request.NodeKey] = node;
        }

        Interlocked.Increment(ref _joins);
        await PushAsync(new PeerMapMessage(PeerMapMessageType.Delta, Interlocked.Increment(ref _version), Upserted: [node.Info]));
        return Results.Ok(new JoinResponse(node.Info, node.Token, new MeshInfo("100.64.0.0/10", "fd7a:115c:a1e0::/48", DnsSuffix, []), Snapshot(request.NodeKey)));
    }

    private async Task MapAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        if (Authenticate(context) is not { } node)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        var id = Guid.NewGuid();
        var stream = new Stream(node.Info.PublicKey, Channel.CreateUnbounded<PeerMapMessage>());
        _streams[id] = stream;
        try
        {
            await SendAsync(socket, Snapshot(node.Info.PublicKey), cts.Token);
            var reader = DrainIncomingAsync(socket, cts);
            while (await stream.Queue.Reader.WaitToReadAsync(cts.Token))
            {
                while (stream.Queue.Reader.TryRead(out var message))
                {
                    await SendAsync(socket, message, cts.Token);
                }
            }

            await reader;
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException)
        {
            // The node went away, the test dropped the stream, or the server stops: drop the connection.
        }
        finally
        {
            _streams.TryRemove(id, out _);
            socket.Abort();
        }
    }

    // Reads (and ignores) what the node sends, to notice its close.
    private static async Task DrainIncomingAsync(WebSocket socket, CancellationTokenSource connection)
    {
        var buffer = new byte[1024];
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, connection.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException)
        {
        }
        finally
        {
            await connection.CancelAsync();
        }
    }

    private async Task<IResult> UpdateEndpointsAsync(HttpContext context, EndpointUpdate update)
    {
        if (Authenticate(context) is not { } node)
        {
            return Results.Problem(detail: "the node token is not valid", statusCode: StatusCodes.Status401Unauthorized);
        }

        var info = node.Info with { Endpoints = update.Endpoints };
        _nodes[info.PublicKey] = node with { Info = info };
        await PushAsync(new PeerMapMessage(PeerMapMessageType.Delta, Interlocked.Increment(ref _version), Upserted: [info]));
        return Results.NoContent();
    }

    private Node? Authenticate(HttpContext context)
    {
        string? header = context.Request.Headers.Authorization;
        if (header is null || !header.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            return null;
        }

        string token = header["Bearer ".Length..];
        return _nodes.Values.FirstOrDefault(n => n.Token == token);
    }

    private PeerMapMessage Snapshot(string exceptKey) =>
        new(PeerMapMessageType.Snapshot, Interlocked.Read(ref _version), _nodes.Values.Where(n => n.Info.PublicKey != exceptKey).Select(n => n.Info).ToList());

    private static Task SendAsync(WebSocket socket, PeerMapMessage message, CancellationToken cancellationToken) =>
        socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(message, Json), WebSocketMessageType.Text, true, cancellationToken);

    private sealed record Node(int Host, string Token, MeshNodeInfo Info);

    private sealed record Stream(string PublicKey, Channel<PeerMapMessage> Queue);
}
