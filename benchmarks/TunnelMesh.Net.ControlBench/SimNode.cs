using System.Buffers;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace TunnelMesh.Net.ControlBench;

/// <summary>What the simulated nodes are waiting for: a peer record with this key (and, when set, this name).</summary>
internal sealed class Watch
{
    private readonly byte[] _key;
    private readonly byte[]? _name;
    private readonly long[] _arrivals;
    private readonly TaskCompletionSource _all = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _count;

    public Watch(string publicKey, string? name, int nodes)
    {
        _key = Encoding.UTF8.GetBytes(publicKey);
        _name = name is null ? null : Encoding.UTF8.GetBytes(name);
        _arrivals = new long[nodes];
        if (nodes == 0)
        {
            _all.TrySetResult();
        }
    }

    /// <summary>Set just before the change is made.</summary>
    public long Start { get; set; }

    public Task All => _all.Task;

    public int Count => Volatile.Read(ref _count);

    public ReadOnlySpan<byte> KeyUtf8 => _key;

    public bool NameMatches(ref Utf8JsonReader r) => _name is null || r.ValueTextEquals(_name);

    public void Arrived(int node, long timestamp)
    {
        if (Interlocked.CompareExchange(ref _arrivals[node], timestamp, 0) == 0 && Interlocked.Increment(ref _count) == _arrivals.Length)
        {
            _all.TrySetResult();
        }
    }

    /// <summary>Milliseconds from <see cref="Start"/> to each node's arrival (those that arrived).</summary>
    public IEnumerable<double> LatenciesMs()
    {
        foreach (long t in _arrivals)
        {
            if (t != 0)
            {
                yield return Stopwatch.GetElapsedTime(Start, t).TotalMilliseconds;
            }
        }
    }
}

/// <summary>The counters every simulated node adds to.</summary>
internal sealed class SimTotals
{
    private long _messages;
    private long _bytes;
    private long _snapshots;
    private long _lastMessage;
    private int _dropped;

    public long Messages => Interlocked.Read(ref _messages);

    public long Bytes => Interlocked.Read(ref _bytes);

    public long Snapshots => Interlocked.Read(ref _snapshots);

    public long LastMessage => Interlocked.Read(ref _lastMessage);

    public int Dropped => Volatile.Read(ref _dropped);

    public volatile Watch? Watch;

    public void Message(int bytes, bool snapshot, long timestamp)
    {
        Interlocked.Increment(ref _messages);
        Interlocked.Add(ref _bytes, bytes);
        if (snapshot)
        {
            Interlocked.Increment(ref _snapshots);
        }

        Interlocked.Exchange(ref _lastMessage, timestamp);
    }

    public void Drop() => Interlocked.Increment(ref _dropped);
}

/// <summary>
/// A simulated node: joined through POST /join (a random 32-byte key, no WireGuard), then holding
/// GET /map. Every message is parsed (Utf8JsonReader: type, version, each peer's key and name,
/// everything else skipped, so the JSON must be well formed) and checked against the current <see cref="Watch"/>.
/// </summary>
internal sealed class SimNode
{
    private const int SmallBuffer = 4096;
    private readonly SimTotals _totals;
    private ClientWebSocket? _socket;

    public SimNode(int index, string publicKey, long id, string token, SimTotals totals)
    {
        Index = index;
        PublicKey = publicKey;
        Id = id;
        Token = token;
        _totals = totals;
    }

    public int Index { get; }

    public string PublicKey { get; }

    public long Id { get; }

    public string Token { get; }

    public Task Receiving { get; private set; } = Task.CompletedTask;

    public async Task ConnectAsync(Uri map, HttpMessageInvoker invoker, CancellationToken ct)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", "Bearer " + Token);
        socket.Options.KeepAliveInterval = TimeSpan.Zero; // the coordinator pings; ClientWebSocket answers while a receive is pending
        await socket.ConnectAsync(map, invoker, ct);
        _socket = socket;
        Receiving = ReceiveLoopAsync(socket, ct);
    }

    public void Abort()
    {
        _socket?.Abort();
        _socket?.Dispose();
    }

    private async Task ReceiveLoopAsync(ClientWebSocket socket, CancellationToken ct)
    {
        byte[] small = new byte[SmallBuffer];
        byte[] buffer = small;
        try
        {
            while (true)
            {
                int length = 0;
                ValueWebSocketReceiveResult r;
                do
                {
                    if (length == buffer.Length)
                    {
                        byte[] bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 4);
                        buffer.AsSpan(0, length).CopyTo(bigger);
                        if (buffer != small)
                        {
                            ArrayPool<byte>.Shared.Return(buffer);
                        }

                        buffer = bigger;
                    }

                    r = await socket.ReceiveAsync(buffer.AsMemory(length), ct);
                    length += r.Count;
                }
                while (!r.EndOfMessage);

                long now = Stopwatch.GetTimestamp();
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    _totals.Drop();
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, ct);
                    return;
                }

                Watch? watch = _totals.Watch;
                bool snapshot = Parse(buffer.AsSpan(0, length), watch, out bool matched);
                _totals.Message(length, snapshot, now);
                if (matched)
                {
                    watch!.Arrived(Index, now);
                }

                if (buffer != small)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = small;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (ex is WebSocketException or JsonException or ObjectDisposedException or InvalidOperationException)
        {
            if (!ct.IsCancellationRequested && socket.State != WebSocketState.Aborted)
            {
                _totals.Drop();
                Console.Error.WriteLine($"  sim node {Index}: {ex.GetType().Name}: {ex.Message}");
            }
        }
    }

    /// <summary>Parses one PeerMapMessage; true when it is a snapshot. <paramref name="matched"/>: a peer record fits the watch.</summary>
    internal static bool Parse(ReadOnlySpan<byte> json, Watch? watch, out bool matched)
    {
        matched = false;
        bool snapshot = false;
        var r = new Utf8JsonReader(json);
        if (!r.Read() || r.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("a map message is not an object");
        }

        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.ValueTextEquals("type"u8))
            {
                r.Read();
                snapshot = r.ValueTextEquals("Snapshot"u8) || r.ValueTextEquals("snapshot"u8);
            }
            else if (r.ValueTextEquals("version"u8))
            {
                r.Read();
                _ = r.GetInt64();
            }
            else if (r.ValueTextEquals("peers"u8) || r.ValueTextEquals("upserted"u8))
            {
                r.Read();
                if (r.TokenType != JsonTokenType.StartArray)
                {
                    r.Skip();
                    continue;
                }

                while (r.Read() && r.TokenType == JsonTokenType.StartObject)
                {
                    bool keyMatches = false, nameMatches = watch is null;
                    while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                    {
                        if (r.ValueTextEquals("publicKey"u8))
                        {
                            r.Read();
                            keyMatches = watch is not null && r.ValueTextEquals(watch.KeyUtf8);
                        }
                        else if (r.ValueTextEquals("name"u8))
                        {
                            r.Read();
                            nameMatches = watch is not null && watch.NameMatches(ref r);
                        }
                        else
                        {
                            r.Read();
                            r.Skip();
                        }
                    }

                    matched |= keyMatches && nameMatches;
                }
            }
            else
            {
                r.Read();
                r.Skip();
            }
        }

        if (r.TokenType != JsonTokenType.EndObject || r.Read())
        {
            throw new JsonException("a map message has trailing data");
        }

        return snapshot;
    }
}
