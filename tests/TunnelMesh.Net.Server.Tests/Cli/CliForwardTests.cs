using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Cli;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Cli;

/// <summary><c>tunnelmesh join --forward</c>: an existing loopback HTTP service put on the mesh, reached from another node by name.</summary>
public sealed partial class CliTests
{
    [Fact]
    public async Task Join_with_forward_puts_a_loopback_http_service_on_the_mesh_by_name()
    {
        string dir = Directory.CreateTempSubdirectory("tmcli").FullName;
        using var stop = new CancellationTokenSource();
        var running = new List<Task<int>>();

        // The "existing local service": a Kestrel app on 127.0.0.1 that knows nothing about the mesh.
        WebApplicationBuilder web = WebApplication.CreateSlimBuilder();
        web.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        web.Logging.ClearProviders();
        await using WebApplication app = web.Build();
        app.MapGet("/", (HttpContext c) => $"grafana says hi to {c.Connection.RemoteIpAddress}");
        await app.StartAsync();
        var service = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());

        MeshNode? client = null;
        try
        {
            var serveOut = new SyncWriter();
            running.Add(Task.Run(() => TunnelMeshCli.RunAsync(["serve", "--listen", "http://127.0.0.1:0", "--db", Path.Combine(dir, "c.db"), "--admin-key", Admin, "--stun-port", "0"], serveOut, serveOut, stop.Token)));
            string url = (await Until(() => ListeningUrl().Match(serveOut.Text) is { Success: true } m ? m.Groups[1].Value : null, "serve prints its URL", running))!;
            var (rc, key, _) = await Run("authkey", "create", "--server", url, "--admin-key", Admin, "--reusable");
            Assert.Equal(0, rc);

            var joinOut = new SyncWriter();
            string[] join = ["join", "--server", url, "--auth-key", key.Trim(), "--hostname", "grafana", "--state-dir", Path.Combine(dir, "grafana"),
                "--listen-address", "127.0.0.1", "--forward", $"80={service.Host}:{service.Port}", "--forward", $"8080=localhost:{service.Port}"];
            running.Add(Task.Run(() => TunnelMeshCli.RunAsync(join, joinOut, joinOut, stop.Token)));
            await Until(() => joinOut.Text.Contains(":8080 (mesh) to localhost:", StringComparison.Ordinal) ? "" : null, "join prints both forwards", running);
            Assert.Matches($@"forwarding 100\.64\.\d+\.\d+:80 \(mesh\) to 127\.0\.0\.1:{service.Port}", joinOut.Text);

            // Another node of the mesh reaches the service by the forwarding node's name.
            client = new MeshNode(new MeshNodeOptions
            {
                ControlUrl = new Uri(url),
                AuthKey = key.Trim(),
                Hostname = "laptop",
                StateDirectory = Path.Combine(dir, "laptop"),
                ListenAddress = IPAddress.Loopback,
            });
            await client.StartAsync().WaitAsync(Deadline);
            await Until(() => client.GetStatus().FindPeer("grafana") is null ? null : "", "laptop sees grafana");
            using var http = client.CreateHttpClient();
            http.Timeout = Deadline;

            // The service sees the forwarder's connection from loopback, not the mesh peer.
            Assert.Equal("grafana says hi to 127.0.0.1", await http.GetStringAsync("http://grafana/"));
            Assert.StartsWith("grafana says hi to ", await http.GetStringAsync("http://grafana.tunnelmesh:8080/"), StringComparison.Ordinal);

            // A third node joins with --socks5: any program on its host reaches grafana by name through it.
            var deskOut = new SyncWriter();
            string[] desk = ["join", "--server", url, "--auth-key", key.Trim(), "--hostname", "desk", "--state-dir", Path.Combine(dir, "desk"),
                "--listen-address", "127.0.0.1", "--socks5", "127.0.0.1:0"];
            running.Add(Task.Run(() => TunnelMeshCli.RunAsync(desk, deskOut, deskOut, stop.Token)));
            string proxy = (await Until(() => SocksLine().Match(deskOut.Text) is { Success: true } m ? m.Groups[1].Value : null, "join prints its SOCKS5 endpoint", running))!;
            await Until(() => client.GetStatus().FindPeer("desk") is null ? null : "", "laptop sees desk (desk has the map too)");
            using var viaProxy = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy($"socks5://{proxy}"), UseProxy = true }) { Timeout = Deadline };
            Assert.Equal("grafana says hi to 127.0.0.1", await viaProxy.GetStringAsync("http://grafana.tunnelmesh/"));
        }
        finally
        {
            if (client is not null)
            {
                await client.DisposeAsync();
            }

            await stop.CancelAsync();
            foreach (var t in running)
            {
                Assert.Equal(0, await t.WaitAsync(TimeSpan.FromSeconds(30)));
            }

            await app.StopAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"SOCKS5 proxy on (127\.0\.0\.1:\d+)")]
    private static partial System.Text.RegularExpressions.Regex SocksLine();

    [Theory]
    [InlineData("0.0.0.0:1080", "is not a loopback address")]
    [InlineData("localhost:1080", "is not PORT or ADDRESS:PORT")]
    [InlineData("70000", "is not PORT or ADDRESS:PORT")]
    public async Task A_bad_socks5_endpoint_is_one_line_and_exit_code_2(string value, string reason)
    {
        var (rc, output, error) = await Run("join", "--server", "http://127.0.0.1:9", "--socks5", value);
        Assert.Equal(2, rc);
        Assert.Empty(output);
        Assert.StartsWith("tunnelmesh: error: --socks5: ", error, StringComparison.Ordinal);
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("80", "is not PORT=HOST:PORT")]
    [InlineData("web=127.0.0.1:3000", "is not a mesh port")]
    [InlineData("0=127.0.0.1:3000", "is not a mesh port")]
    [InlineData("80=127.0.0.1", "is not HOST:PORT")]
    [InlineData("80=127.0.0.1:0", "is not HOST:PORT")]
    public async Task A_bad_forward_is_one_line_and_exit_code_2(string forward, string reason)
    {
        var (rc, output, error) = await Run("join", "--server", "http://127.0.0.1:9", "--forward", forward);
        Assert.Equal(2, rc);
        Assert.Empty(output);
        Assert.Single(error.Trim().Split('\n'));
        Assert.StartsWith("tunnelmesh: error: --forward: ", error, StringComparison.Ordinal);
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_mesh_port_forwarded_twice_is_refused()
    {
        var (rc, _, error) = await Run("join", "--server", "http://127.0.0.1:9", "--forward", "80=127.0.0.1:3000", "--forward", "80=127.0.0.1:3001");
        Assert.Equal(2, rc);
        Assert.Contains("--forward: mesh port 80 is forwarded twice", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Join_help_describes_forward()
    {
        var (rc, output, _) = await Run("join", "--help");
        Assert.Equal(0, rc);
        Assert.Contains("--forward <PORT=HOST:PORT>", output, StringComparison.Ordinal);
        Assert.Contains("80=127.0.0.1:3000", output, StringComparison.Ordinal);
    }
}
