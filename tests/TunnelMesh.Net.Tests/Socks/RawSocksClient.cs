using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TunnelMesh.Net.Tests.Socks;

/// <summary>A SOCKS5 client that sends crafted bytes over a real loopback TCP socket; every wait is bounded.</summary>
internal sealed class RawSocksClient : IAsyncDisposable
{
    public static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    private RawSocksClient(Socket socket) => Socket = socket;

    public Socket Socket { get; }

    public static async Task<RawSocksClient> ConnectAsync(IPEndPoint server)
    {
        var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var cts = new CancellationTokenSource(Limit);
        await socket.ConnectAsync(server, cts.Token);
        return new RawSocksClient(socket);
    }

    public async Task SendAsync(params byte[] bytes)
    {
        using var cts = new CancellationTokenSource(Limit);
        int sent = 0;
        while (sent < bytes.Length)
        {
            sent += await Socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None, cts.Token);
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes; fails the test if the server closes first.</summary>
    public async Task<byte[]> ReadAsync(int count)
    {
        var buffer = new byte[count];
        using var cts = new CancellationTokenSource(Limit);
        int got = 0;
        while (got < count)
        {
            int n = await Socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None, cts.Token);
            Assert.True(n > 0, $"the server closed after {got} of {count} expected bytes");
            got += n;
        }

        return buffer;
    }

    /// <summary>
    /// Whether the server closed the connection (end of stream or reset) within the limit. With
    /// <paramref name="drain"/> false any byte before the close counts as "not closed"; with true,
    /// up to 64 KiB are read and dropped first (e.g. a method selection sent before the close).
    /// </summary>
    public async Task<bool> IsClosedByServerAsync(bool drain = false)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(Limit);
        try
        {
            for (int total = 0; total < 64 * 1024;)
            {
                int n = await Socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    return true;
                }

                if (!drain)
                {
                    return false;
                }

                total += n;
            }

            return false;
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Greeting offering no authentication; asserts method 0x00 is chosen.</summary>
    public async Task NoAuthAsync()
    {
        await SendAsync(5, 1, 0);
        Assert.Equal(new byte[] { 5, 0 }, await ReadAsync(2));
    }

    /// <summary>Greeting offering username/password, then the RFC 1929 sub-negotiation; returns the STATUS byte.</summary>
    public async Task<byte> LoginAsync(string user, string password)
    {
        await SendAsync(5, 1, 2);
        Assert.Equal(new byte[] { 5, 2 }, await ReadAsync(2));
        await SendAsync(UserPassword(user, password));
        byte[] status = await ReadAsync(2);
        Assert.Equal(1, status[0]);
        return status[1];
    }

    /// <summary>Sends a request and reads the 10-byte IPv4 reply (this server always answers with ATYP 1).</summary>
    public async Task<Reply> RequestAsync(byte[] request)
    {
        await SendAsync(request);
        byte[] r = await ReadAsync(10);
        Assert.Equal(5, r[0]);
        Assert.Equal(0, r[2]);
        Assert.Equal(1, r[3]);
        return new Reply(r[1], new IPEndPoint(new IPAddress(r.AsSpan(4, 4)), BinaryPrimitives.ReadUInt16BigEndian(r.AsSpan(8))));
    }

    public static byte[] UserPassword(string user, string password)
    {
        byte[] u = Encoding.UTF8.GetBytes(user);
        byte[] p = Encoding.UTF8.GetBytes(password);
        return [1, (byte)u.Length, .. u, (byte)p.Length, .. p];
    }

    public static byte[] ConnectIPv4(IPAddress address, int port, byte command = 1) =>
        [5, command, 0, 1, .. address.GetAddressBytes(), (byte)(port >> 8), (byte)port];

    public static byte[] ConnectIPv6(IPAddress address, int port) =>
        [5, 1, 0, 4, .. address.GetAddressBytes(), (byte)(port >> 8), (byte)port];

    public static byte[] ConnectName(string host, int port, byte command = 1)
    {
        byte[] name = Encoding.ASCII.GetBytes(host);
        return [5, command, 0, 3, (byte)name.Length, .. name, (byte)(port >> 8), (byte)port];
    }

    public ValueTask DisposeAsync()
    {
        Socket.Dispose();
        return ValueTask.CompletedTask;
    }

    public readonly record struct Reply(byte Code, IPEndPoint Bound);
}
