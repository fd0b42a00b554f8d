using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace TunnelMesh.Net.Tests.Forwarding;

/// <summary>
/// The forwarder's target: a kernel TCP listener on 127.0.0.1, port 0. Accepted sockets are handed
/// to the test in order (<see cref="NextAsync"/>); the test decides what each one does.
/// </summary>
internal sealed class KernelTarget : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly Channel<Socket> _accepted = Channel.CreateUnbounded<Socket>();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _all = [];
    private readonly Task _loop;

    public KernelTarget()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _loop = AcceptLoopAsync();
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>How many connections the target accepted.</summary>
    public int AcceptedCount { get; private set; }

    /// <summary>An endpoint on 127.0.0.1 where nothing listens (connects are refused).</summary>
    public static IPEndPoint Refusing()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return (IPEndPoint)probe.LocalEndPoint!;
    }

    public Task<Socket> NextAsync(TimeSpan limit) => _accepted.Reader.ReadAsync().AsTask().WaitAsync(limit);

    /// <summary>Serves every accepted connection as an echo (until end of stream, then FIN).</summary>
    public Task EchoAllAsync() => Task.Run(async () =>
    {
        var echoes = new List<Task>();
        try
        {
            await foreach (Socket socket in _accepted.Reader.ReadAllAsync(_stop.Token))
            {
                echoes.Add(EchoAsync(socket, _stop.Token));
            }
        }
        catch (OperationCanceledException)
        {
        }

        await Task.WhenAll(echoes);
    });

    public static async Task EchoAsync(Socket socket, CancellationToken ct)
    {
        byte[] buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
                if (n == 0)
                {
                    socket.Shutdown(SocketShutdown.Send);
                    return;
                }

                await socket.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, ct);
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Reset by the forwarder, or the test is over.
        }
    }

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                Socket socket = await _listener.AcceptAsync(_stop.Token);
                lock (_all)
                {
                    _all.Add(socket);
                    AcceptedCount++;
                }

                await _accepted.Writer.WriteAsync(socket);
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _loop;
        lock (_all)
        {
            foreach (Socket socket in _all)
            {
                socket.Dispose();
            }
        }

        _stop.Dispose();
    }
}
