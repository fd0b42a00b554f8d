using System.Net;
using System.Text;
using TunnelMesh.Net.Socks;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Tests.Socks;

/// <summary>
/// Two static MeshNodes on loopback (A is the proxy's node, B serves) with an echo service and a
/// tiny HTTP/1.1 responder on B's mesh address. One per test class (a class fixture).
/// </summary>
public sealed class SocksMesh : IAsyncLifetime
{
    public const int EchoPort = 7;
    public const int HttpPort = 80;
    public const int ClosedPort = 81;
    /// <summary>An address A routes to B, where nothing answers (B is not it): a dial there times out.</summary>
    public static readonly IPAddress BlackHole = IPAddress.Parse("100.64.0.50");

    public const string HttpBody = "hello from beta over the mesh\n";

    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _services = [];
    private NodePair? _pair;
    private MeshTcpListener? _echo;
    private MeshTcpListener? _http;

    public MeshNode A => _pair!.A;

    public MeshNode B => _pair!.B;

    public static IPAddress AddressA => NodePair.IpA;

    public static IPAddress AddressB => NodePair.IpB;

    public async Task InitializeAsync()
    {
        _pair = await NodePair.StartAsync(configurePeerOfA: p => p.AllowedIPs.Add(new IPNetwork(BlackHole, 32)));
        _echo = await B.ListenAsync(EchoPort);
        _http = await B.ListenAsync(HttpPort);
        _services.Add(ServeAsync(_echo, EchoAsync));
        _services.Add(ServeAsync(_http, HttpAsync));
        await A.PingAsync(AddressB, TimeSpan.FromSeconds(10));
    }

    /// <summary>A proxy on 127.0.0.1, port 0, through node A; the caller disposes it.</summary>
    public async Task<MeshSocks5Server> StartServerAsync(Action<MeshSocks5Options>? configure = null, Microsoft.Extensions.Logging.ILoggerFactory? logs = null)
    {
        var options = new MeshSocks5Options { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) };
        configure?.Invoke(options);
        var server = new MeshSocks5Server(A, options, logs);
        await server.StartAsync();
        return server;
    }

    private async Task ServeAsync(MeshTcpListener listener, Func<MeshTcpStream, Task> handle)
    {
        var connections = new List<Task>();
        try
        {
            while (true)
            {
                MeshTcpStream stream = await listener.AcceptAsync(_stop.Token);
                connections.Add(HandleAsync(stream, handle));
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }

        await Task.WhenAll(connections);
    }

    private static async Task HandleAsync(MeshTcpStream stream, Func<MeshTcpStream, Task> handle)
    {
        await using (stream)
        {
            try
            {
                await handle(stream);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
            {
                // The client went away (a test that resets on purpose), or the nodes are stopping.
            }
        }
    }

    /// <summary>Echoes until the client half-closes, then half-closes too.</summary>
    private static async Task EchoAsync(MeshTcpStream stream)
    {
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            await stream.WriteAsync(buffer.AsMemory(0, n));
        }

        await stream.ShutdownSendAsync();
    }

    /// <summary>Reads one request head and answers 200 with <see cref="HttpBody"/>, then closes.</summary>
    private static async Task HttpAsync(MeshTcpStream stream)
    {
        var head = new List<byte>();
        var buffer = new byte[1024];
        while (!EndsWithBlankLine(head))
        {
            int n = await stream.ReadAsync(buffer);
            if (n == 0)
            {
                return;
            }

            head.AddRange(buffer.AsSpan(0, n));
        }

        byte[] body = Encoding.ASCII.GetBytes(HttpBody);
        byte[] response = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(response);
        await stream.WriteAsync(body);
        await stream.ShutdownSendAsync();
        while (await stream.ReadAsync(buffer) > 0)
        {
            // Drain until the client closes, so disposing does not reset unread data.
        }
    }

    private static bool EndsWithBlankLine(List<byte> head)
    {
        int n = head.Count;
        return n >= 4 && head[n - 4] == '\r' && head[n - 3] == '\n' && head[n - 2] == '\r' && head[n - 1] == '\n';
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_echo is not null)
        {
            await _echo.DisposeAsync();
        }

        if (_http is not null)
        {
            await _http.DisposeAsync();
        }

        // Stopping the nodes ends every connection a test left open, so the services finish.
        if (_pair is not null)
        {
            await _pair.DisposeAsync();
        }

        await Task.WhenAll(_services).WaitAsync(TimeSpan.FromSeconds(30));

        _stop.Dispose();
    }
}
