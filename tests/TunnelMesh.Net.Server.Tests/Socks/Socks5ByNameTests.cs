using System.Diagnostics;
using System.Net;
using System.Text;
using TunnelMesh.Net.Server.Tests.EndToEnd;
using TunnelMesh.Net.Socks;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Socks;

/// <summary>
/// The real curl reaches a mesh HTTP service by mesh name through the SOCKS5 proxy of another node,
/// with a real coordinator (names come from its peer map).
/// </summary>
public sealed class Socks5ByNameTests
{
    private const string Body = "served by socks-b on the mesh\n";

    [ExternalFact("curl")]
    public async Task Curl_socks5_hostname_reaches_a_node_by_name_and_by_fqdn()
    {
        await using KestrelMesh mesh = await KestrelMesh.StartAsync();
        string key = await mesh.CreateReusableKeyAsync();
        MeshNode a = await mesh.StartNodeAsync("socks-a", key);
        MeshNode b = await mesh.StartNodeAsync("socks-b", key);
        await KestrelMesh.PeerAsync(a, "socks-b");

        await using MeshTcpListener http = await b.ListenAsync(80);
        using var stop = new CancellationTokenSource();
        Task serving = ServeHttpAsync(http, stop.Token);
        try
        {
            await using var open = new MeshSocks5Server(a, new MeshSocks5Options { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0) });
            await open.StartAsync();
            foreach (string url in new[] { "http://socks-b/", "http://socks-b.tunnelmesh/", "http://SOCKS-B.TunnelMesh./" })
            {
                (int exit, string stdout, string stderr) = await CurlAsync("--socks5-hostname", open.LocalEndPoint.ToString(), url);
                Assert.True(exit == 0, $"curl {url} exited {exit}: {stderr}");
                Assert.Equal(Body, stdout);
            }

            (int unknownExit, _, _) = await CurlAsync("--socks5-hostname", open.LocalEndPoint.ToString(), "http://socks-nobody/");
            Assert.NotEqual(0, unknownExit);
            Assert.Equal(1, open.GetStatistics().FailedByReply.GetValueOrDefault(Socks5Reply.HostUnreachable));

            await using var guarded = new MeshSocks5Server(a, new MeshSocks5Options { ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0), Username = "paas", Password = "homelab-2024" });
            await guarded.StartAsync();
            (int authExit, string authOut, string authErr) = await CurlAsync("--proxy", $"socks5h://paas:homelab-2024@{guarded.LocalEndPoint}", "http://socks-b/");
            Assert.True(authExit == 0, $"curl with credentials exited {authExit}: {authErr}");
            Assert.Equal(Body, authOut);
            (int wrongExit, string wrongOut, _) = await CurlAsync("--proxy", $"socks5h://paas:nope@{guarded.LocalEndPoint}", "http://socks-b/");
            Assert.NotEqual(0, wrongExit);
            Assert.Equal("", wrongOut);
        }
        finally
        {
            await stop.CancelAsync();
            await http.DisposeAsync();
            await serving.WaitAsync(KestrelMesh.Deadline);
        }
    }

    private static async Task<(int Exit, string Stdout, string Stderr)> CurlAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in (string[])["-sS", "--max-time", "30", .. args])
        {
            psi.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(psi)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(45));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>A tiny HTTP/1.1 responder: reads a request head, answers <see cref="Body"/>, closes.</summary>
    private static async Task ServeHttpAsync(MeshTcpListener listener, CancellationToken stop)
    {
        var connections = new List<Task>();
        try
        {
            while (true)
            {
                MeshTcpStream stream = await listener.AcceptAsync(stop);
                connections.Add(AnswerAsync(stream));
            }
        }
        catch (Exception) when (stop.IsCancellationRequested)
        {
        }

        await Task.WhenAll(connections);
    }

    private static async Task AnswerAsync(MeshTcpStream stream)
    {
        try
        {
            await AnswerCoreAsync(stream);
        }
        catch (IOException)
        {
            // The client reset; its own assertions tell what went wrong.
        }
    }

    private static async Task AnswerCoreAsync(MeshTcpStream stream)
    {
        await using (stream)
        {
            var head = new StringBuilder();
            var buffer = new byte[1024];
            while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                int n = await stream.ReadAsync(buffer);
                if (n == 0)
                {
                    return;
                }

                head.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }

            byte[] body = Encoding.ASCII.GetBytes(Body);
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"));
            await stream.WriteAsync(body);
            await stream.ShutdownSendAsync();
            while (await stream.ReadAsync(buffer) > 0)
            {
            }
        }
    }
}
