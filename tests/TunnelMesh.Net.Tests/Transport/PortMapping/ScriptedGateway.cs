using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace TunnelMesh.Net.Tests.Transport.PortMapping;

/// <summary>
/// A scripted port-mapping server on a loopback address, port 5351 (not a real gateway: the real
/// peer is miniupnpd in <see cref="MiniupnpdPortMappingTests"/>). Each request is handed to
/// <c>answer</c>, which returns the datagrams to send back and the port to send each from
/// (5351, or another port of the same address to play a spoofer).
/// </summary>
internal sealed class ScriptedGateway : IAsyncDisposable
{
    private readonly Socket _server;
    private readonly Socket _other;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public ScriptedGateway(IPAddress address, Func<byte[], IEnumerable<(byte[] Datagram, bool FromOtherPort)>> answer)
    {
        Address = address;
        _server = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _server.Bind(new IPEndPoint(address, 5351));
        _other = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _other.Bind(new IPEndPoint(address, 0));
        _loop = RunAsync(answer);
    }

    public IPAddress Address { get; }

    /// <summary>Every request received, in order.</summary>
    public Channel<byte[]> Requests { get; } = Channel.CreateUnbounded<byte[]>();

    private async Task RunAsync(Func<byte[], IEnumerable<(byte[] Datagram, bool FromOtherPort)>> answer)
    {
        var buffer = new byte[2048];
        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult r;
            try
            {
                r = await _server.ReceiveFromAsync(buffer, SocketFlags.None, from, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            byte[] request = buffer.AsSpan(0, r.ReceivedBytes).ToArray();
            Requests.Writer.TryWrite(request);
            foreach (var (datagram, other) in answer(request))
            {
                await (other ? _other : _server).SendToAsync(datagram, SocketFlags.None, r.RemoteEndPoint);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _server.Dispose();
        _other.Dispose();
        _stop.Dispose();
    }
}
