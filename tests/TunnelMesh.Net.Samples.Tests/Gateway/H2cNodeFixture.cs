using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SidecarGateway;
using SidecarGateway.Demo;

namespace TunnelMesh.Net.Samples.Tests.Gateway;

/// <summary>
/// The demo mesh plus a node "h2" whose own Kestrel serves on its mesh port 80 in HTTP/2 only (h2c,
/// prior knowledge: no HTTP/1.1 at all), and a gateway that reaches it as <c>h2c://h2</c> under the
/// host name <c>h2.example</c> and as plain path mode (HTTP/1.1) under <c>/h2/</c>. The gateway's
/// activity timeout is short, so a node that never answers gets its 504 quickly. The gateway listens
/// on http:// (HTTP/1.1: Kestrel speaks HTTP/2 without TLS only on an HTTP/2-only endpoint) and on
/// https:// with a self-signed certificate (HTTP/1.1 and HTTP/2 by ALPN), as a public gateway would.
/// </summary>
public sealed class H2cNodeFixture : IAsyncLifetime
{
    /// <summary>The gateway's <see cref="GatewayOptions.ActivityTimeout"/>.</summary>
    public static readonly TimeSpan ActivityTimeout = TimeSpan.FromSeconds(5);

    public DemoMesh Mesh { get; private set; } = null!;

    public MeshNode H2Node { get; private set; } = null!;

    public WebApplication H2Service { get; private set; } = null!;

    public WebApplication Gateway { get; private set; } = null!;

    /// <summary>The gateway's self-signed TLS certificate.</summary>
    public X509Certificate2 Certificate { get; private set; } = null!;

    /// <summary>http://127.0.0.1:port/ of the gateway.</summary>
    public Uri Url { get; private set; } = null!;

    /// <summary>https://127.0.0.1:port/ of the gateway (self-signed certificate: <see cref="TlsClient"/> accepts it).</summary>
    public Uri TlsUrl { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(GatewayFixture.Deadline);
        Mesh = await DemoMesh.StartAsync("homelab", cancellationToken: cts.Token);
        H2Node = new MeshNode(Mesh.NodeOptions("h2"));
        await H2Node.StartAsync(cts.Token);

        var service = WebApplication.CreateSlimBuilder();
        service.Logging.ClearProviders();
        service.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        service.WebHost.UseMesh(o =>
        {
            o.Node = H2Node;
            o.Port = 80;
            o.ConfigureEndpoint = listen => listen.Protocols = HttpProtocols.Http2;
        });
        H2Service = service.Build();
        H2Service.UseWebSockets();
        MapH2Service(H2Service);
        await H2Service.StartAsync(cts.Token);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["MeshNode:ControlUrl"] = Mesh.ControlUrl.ToString(),
            ["MeshNode:AuthKey"] = Mesh.AuthKey,
            ["MeshNode:Hostname"] = "gateway",
            ["MeshNode:ListenAddress"] = "127.0.0.1",
            ["Gateway:ConnectTimeout"] = GatewayFixture.ConnectTimeout.ToString(),
            ["Gateway:ActivityTimeout"] = ActivityTimeout.ToString(),
            ["Gateway:Hosts:h2.example"] = "h2c://h2",
        });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelHttpsConfiguration();
        Certificate = SelfSignedCertificate();
        builder.WebHost.ConfigureKestrel(k => k.ConfigureHttpsDefaults(https => https.ServerCertificate = Certificate));
        Gateway = GatewayHost.Build(builder, "http://127.0.0.1:0;https://127.0.0.1:0");
        await Gateway.StartAsync(cts.Token);
        var addresses = Gateway.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses;
        Url = new Uri(addresses.Single(a => a.StartsWith("http:", StringComparison.Ordinal)));
        TlsUrl = new Uri(addresses.Single(a => a.StartsWith("https:", StringComparison.Ordinal)));
        await DemoMesh.WaitForPeerAsync(GatewayHost.Node(Gateway), "h2", cts.Token);
    }

    /// <summary>The h2 node's endpoints: its protocol, a body with trailers, a response that never comes, a WebSocket echo.</summary>
    private static void MapH2Service(WebApplication app)
    {
        app.MapGet("/protocol", (HttpContext context) => context.Request.Protocol);
        app.MapGet("/trailers", async (HttpContext context) =>
        {
            context.Response.DeclareTrailer("x-checksum");
            await context.Response.WriteAsync("body before the trailers");
            context.Response.AppendTrailer("x-checksum", "c0ffee");
        });
        app.MapGet("/silent", async (HttpContext context) =>
        {
            // Never answers: waits until the gateway gives up and resets the stream (bounded, in case it does not).
            try
            {
                await Task.Delay(GatewayFixture.Deadline, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
            }
        });
        app.Map("/echo", async (HttpContext context) =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
                return;
            }

            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            byte[] buffer = new byte[16 * 1024];
            while (true)
            {
                var received = await socket.ReceiveAsync(buffer, context.RequestAborted);
                if (received.MessageType == System.Net.WebSockets.WebSocketMessageType.Close)
                {
                    await socket.CloseOutputAsync(received.CloseStatus ?? System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, received.CloseStatusDescription, context.RequestAborted);
                    return;
                }

                await socket.SendAsync(buffer.AsMemory(0, received.Count), received.MessageType, received.EndOfMessage, context.RequestAborted);
            }
        });
    }

    public async Task DisposeAsync()
    {
        if (Gateway is not null)
        {
            await Gateway.StopAsync(CancellationToken.None);
            await Gateway.DisposeAsync();
        }

        if (H2Service is not null)
        {
            await H2Service.StopAsync(CancellationToken.None);
            await H2Service.DisposeAsync();
        }

        if (H2Node is not null)
        {
            await H2Node.DisposeAsync();
        }

        if (Mesh is not null)
        {
            await Mesh.DisposeAsync();
        }

        Certificate?.Dispose();
    }

    public HttpClient Client() => new() { BaseAddress = Url, Timeout = GatewayFixture.Deadline };

    /// <summary>A client of the gateway's https:// address that trusts its self-signed certificate.</summary>
    public HttpClient TlsClient() => new(new SocketsHttpHandler
    {
        SslOptions = { RemoteCertificateValidationCallback = (_, presented, _, _) => presented is not null && presented.GetCertHashString() == Certificate.GetCertHashString() },
    })
    {
        BaseAddress = TlsUrl,
        Timeout = GatewayFixture.Deadline,
    };

    private static X509Certificate2 SelfSignedCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=gateway.test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("h2.example");
        request.CertificateExtensions.Add(names.Build());
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
    }
}
