using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace TunnelMesh.Net.Server.Tests.Nat;

/// <summary>
/// Bulk data between two lab hosts over the mesh, on real sockets at both ends: a TCP listener on
/// 127.0.0.1 inside the receiving host (behind that node's <c>join --forward PORT=127.0.0.1:…</c>)
/// and a client socket inside the sending host that connects through the sending node's
/// <c>join --socks5</c> proxy. The sender writes seeded pseudo-random bytes and hashes them, the
/// receiver hashes what it reads: equal SHA-256 values mean every byte arrived once, in order.
/// </summary>
public sealed class LabTransfer : IDisposable
{
    /// <summary>The mesh port the receiving node forwards to the listener.</summary>
    public const int MeshPort = 9000;

    private const int ChunkSize = 256 * 1024;

    private readonly Socket _listener;
    private long _received;

    private LabTransfer(Socket listener) => _listener = listener;

    /// <summary>Bytes the receiver has read so far.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>The <c>--forward</c> value the receiving node is started with.</summary>
    public string ForwardOption => $"{MeshPort}=127.0.0.1:{((IPEndPoint)_listener.LocalEndPoint!).Port}";

    /// <summary>Opens the listener inside <paramref name="receiver"/> (before its node starts, so the forward has a target).</summary>
    public static LabTransfer Listen(LabHost receiver)
    {
        var listener = receiver.Namespace.CreateSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        return new LabTransfer(listener);
    }

    /// <summary>What both ends saw.</summary>
    public sealed record Result(long Bytes, byte[] SentSha256, byte[] ReceivedSha256, long ReceivedBytes, TimeSpan Elapsed)
    {
        public double MiBps => Bytes / (1024.0 * 1024.0) / Elapsed.TotalSeconds;

        public void AssertIntact()
        {
            Assert.True(ReceivedBytes == Bytes, $"sent {Bytes} bytes, received {ReceivedBytes}");
            Assert.True(SentSha256.AsSpan().SequenceEqual(ReceivedSha256), $"SHA-256 differs ({Convert.ToHexString(SentSha256)} sent, {Convert.ToHexString(ReceivedSha256)} received)");
        }
    }

    /// <summary>Sends <paramref name="bytes"/> from <paramref name="client"/>'s host to the listener behind <paramref name="server"/>.</summary>
    public async Task<Result> RunAsync(LabNode client, LabNode server, long bytes, CancellationToken ct)
    {
        Interlocked.Exchange(ref _received, 0);
        var watch = Stopwatch.StartNew();
        using var socket = client.Host.Namespace.CreateSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, client.Socks5Port), ct);
        await Socks5ConnectAsync(socket, server.MeshAddress, MeshPort, ct);
        using var accepted = await _listener.AcceptAsync(ct);
        await using var outbound = new NetworkStream(socket, ownsSocket: false);
        await using var inbound = new NetworkStream(accepted, ownsSocket: false);
        var receive = Task.Run(() => ReceiveAsync(inbound, bytes, ct), ct);
        var send = Task.Run(() => SendAsync(outbound, bytes, seed: 11, ct), ct);
        try
        {
            await Task.WhenAll(send, receive);
        }
        catch
        {
            // Whichever side failed, the other is unblocked by closing both sockets.
            socket.Close();
            accepted.Close();
            throw;
        }

        var (received, receivedHash) = await receive;
        return new Result(bytes, await send, receivedHash, received, watch.Elapsed);
    }

    private static async Task<byte[]> SendAsync(Stream stream, long bytes, int seed, CancellationToken ct)
    {
        var random = new Random(seed);
        var chunk = new byte[ChunkSize];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (long left = bytes; left > 0;)
        {
            int n = (int)Math.Min(left, chunk.Length);
            random.NextBytes(chunk.AsSpan(0, n));
            hash.AppendData(chunk, 0, n);
            await stream.WriteAsync(chunk.AsMemory(0, n), ct);
            left -= n;
        }

        return hash.GetHashAndReset();
    }

    private async Task<(long Bytes, byte[] Hash)> ReceiveAsync(Stream stream, long bytes, CancellationToken ct)
    {
        var buffer = new byte[ChunkSize];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long total = 0;
        while (total < bytes)
        {
            int n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, bytes - total)), ct);
            if (n == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, n);
            total += n;
            Interlocked.Add(ref _received, n);
        }

        return (total, hash.GetHashAndReset());
    }

    /// <summary>RFC 1928 without authentication: CONNECT to an IPv4 address.</summary>
    private static async Task Socks5ConnectAsync(Socket socket, IPAddress address, int port, CancellationToken ct)
    {
        await socket.SendAsync(new byte[] { 5, 1, 0 }, ct);
        var reply = new byte[2];
        await ReadExactlyAsync(socket, reply, ct);
        Assert.True(reply[0] == 5 && reply[1] == 0, $"SOCKS5 method reply {reply[0]} {reply[1]}");

        var request = new byte[10];
        request[0] = 5;
        request[1] = 1;
        request[3] = 1;
        address.TryWriteBytes(request.AsSpan(4, 4), out _);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(8), (ushort)port);
        await socket.SendAsync(request, ct);

        var head = new byte[4];
        await ReadExactlyAsync(socket, head, ct);
        Assert.True(head[0] == 5 && head[1] == 0, $"SOCKS5 CONNECT to {address}:{port} answered with reply code {head[1]}");
        int rest = head[3] switch { 1 => 4, 4 => 16, _ => -1 } + 2;
        Assert.True(rest > 1, $"SOCKS5 reply with address type {head[3]}");
        await ReadExactlyAsync(socket, new byte[rest], ct);
    }

    private static async Task ReadExactlyAsync(Socket socket, byte[] buffer, CancellationToken ct)
    {
        for (int read = 0; read < buffer.Length;)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(read), ct);
            if (n == 0)
            {
                throw new IOException("the SOCKS5 proxy closed the connection");
            }

            read += n;
        }
    }

    public void Dispose() => _listener.Dispose();
}
