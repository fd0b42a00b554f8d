using System.Net;
using System.Net.Sockets;

namespace TunnelMesh.Net.Server.Tests.Relay;

/// <summary>
/// A load balancer in front of coordinator replicas, as far as a node can tell: a TCP proxy on
/// 127.0.0.1:0 that sends each new connection to the current target; <see cref="Switch"/> changes the
/// target and cuts every connection it carries (as a balancer does when a backend fails).
/// </summary>
internal sealed class SwitchingTcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly List<Socket> _open = [];
    private readonly List<Task> _pumps = [];
    private readonly Task _accepting;
    private IPEndPoint _target;

    public SwitchingTcpProxy(Uri target)
    {
        _target = EndPoint(target);
        _listener.Start();
        Url = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");
        _accepting = AcceptAsync();
    }

    public Uri Url { get; }

    /// <summary>Sends new connections to <paramref name="target"/> and closes the ones open now.</summary>
    public void Switch(Uri target)
    {
        lock (_gate)
        {
            _target = EndPoint(target);
            foreach (Socket s in _open)
            {
                s.Dispose();
            }

            _open.Clear();
        }
    }

    private static IPEndPoint EndPoint(Uri url) => new(IPAddress.Parse(url.Host), url.Port);

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                Socket client = await _listener.AcceptSocketAsync(_stop.Token);
                var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                IPEndPoint target;
                lock (_gate)
                {
                    target = _target;
                    _open.Add(client);
                    _open.Add(upstream);
                }

                try
                {
                    await upstream.ConnectAsync(target, _stop.Token);
                }
                catch (SocketException)
                {
                    client.Dispose();
                    upstream.Dispose();
                    continue;
                }

                lock (_gate)
                {
                    _pumps.RemoveAll(t => t.IsCompleted);
                    _pumps.Add(PumpAsync(client, upstream));
                    _pumps.Add(PumpAsync(upstream, client));
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private async Task PumpAsync(Socket from, Socket to)
    {
        byte[] buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (n == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            from.Dispose();
            to.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Task[] pumps;
        lock (_gate)
        {
            foreach (Socket s in _open)
            {
                s.Dispose();
            }

            pumps = [.. _pumps];
        }

        await Task.WhenAll(pumps);
        _stop.Dispose();
    }
}
