using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace TunnelMesh.Net.ForwardBench;

/// <summary>
/// The "existing local services" the forwarders point at, kernel TCP on 127.0.0.1: a sink (reads to the end,
/// answers with the 8-byte count, closes) and a source (reads an 8-byte count, sends that many bytes, closes).
/// </summary>
internal sealed class Targets : IAsyncDisposable
{
    private const int ChunkSize = 64 * 1024;
    private readonly Socket _sink = Listen();
    private readonly Socket _source = Listen();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sinkLoop;
    private readonly Task _sourceLoop;

    public Targets()
    {
        _sinkLoop = AcceptLoopAsync(_sink, SinkAsync);
        _sourceLoop = AcceptLoopAsync(_source, SourceAsync);
    }

    public IPEndPoint Sink => (IPEndPoint)_sink.LocalEndPoint!;

    public IPEndPoint Source => (IPEndPoint)_source.LocalEndPoint!;

    private static Socket Listen()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen(16);
        return socket;
    }

    private async Task AcceptLoopAsync(Socket listener, Func<Socket, Task> serve)
    {
        var connections = new List<Task>();
        try
        {
            while (true)
            {
                Socket client = await listener.AcceptAsync(_stop.Token);
                client.NoDelay = true;
                connections.Add(serve(client));
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }

        await Task.WhenAll(connections);
    }

    private async Task SinkAsync(Socket client)
    {
        using (client)
        {
            byte[] buffer = new byte[ChunkSize];
            long total = 0;
            int n;
            while ((n = await client.ReceiveAsync(buffer, SocketFlags.None, _stop.Token)) > 0)
            {
                total += n;
            }

            BinaryPrimitives.WriteInt64BigEndian(buffer, total);
            await client.SendAsync(buffer.AsMemory(0, 8), SocketFlags.None, _stop.Token);
            client.Shutdown(SocketShutdown.Send);
        }
    }

    private async Task SourceAsync(Socket client)
    {
        using (client)
        {
            byte[] chunk = new byte[ChunkSize];
            for (int got = 0; got < 8;)
            {
                int n = await client.ReceiveAsync(chunk.AsMemory(got, 8 - got), SocketFlags.None, _stop.Token);
                if (n == 0)
                {
                    return;
                }

                got += n;
            }

            for (long left = BinaryPrimitives.ReadInt64BigEndian(chunk); left > 0;)
            {
                int count = (int)Math.Min(left, chunk.Length);
                int sent = await client.SendAsync(chunk.AsMemory(0, count), SocketFlags.None, _stop.Token);
                left -= sent;
            }

            client.Shutdown(SocketShutdown.Send);

            // Wait for the client's FIN before closing, so no RST cuts the tail.
            while (await client.ReceiveAsync(chunk, SocketFlags.None, _stop.Token) > 0)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _sink.Dispose();
        _source.Dispose();
        try
        {
            await Task.WhenAll(_sinkLoop, _sourceLoop);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }
}
