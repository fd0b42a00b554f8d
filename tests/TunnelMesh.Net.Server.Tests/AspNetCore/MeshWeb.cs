using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Server.Tests.AspNetCore;

/// <summary>What <c>/whoami</c> answers: the peer from <c>GetMeshPeer()</c> and what Kestrel says about the connection.</summary>
public sealed record WhoAmI(string? Name, string? Key, string[]? Tags, string? RemoteIp, int LocalPort, string ConnectionId);

/// <summary>A small web app for the tests: Kestrel with the given web host setup and a fixed set of endpoints.</summary>
internal static class MeshWeb
{
    /// <summary>Builds and starts the app; <paramref name="setup"/> configures the web host and services (UseMesh, AddMeshNode…).</summary>
    public static async Task<WebApplication> StartAsync(Action<WebApplicationBuilder> setup, Action<WebApplication>? map = null, TimeSpan? shutdownTimeout = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel();
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = shutdownTimeout ?? TimeSpan.FromSeconds(5));
        setup(builder);
        WebApplication app = builder.Build();
        MapEndpoints(app);
        map?.Invoke(app);
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        return app;
    }

    public static void MapEndpoints(WebApplication app)
    {
        app.MapGet("/whoami", (HttpContext http) =>
        {
            MeshPeerIdentity? peer = http.GetMeshPeer();
            return Results.Json(new WhoAmI(
                peer?.Name,
                peer?.PublicKey.ToString(),
                peer?.Tags.ToArray(),
                http.Connection.RemoteIpAddress?.ToString(),
                http.Connection.LocalPort,
                http.Connection.Id));
        });
        app.MapPost("/hash", async (HttpRequest request) =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = new byte[64 * 1024];
            long total = 0;
            int n;
            while ((n = await request.Body.ReadAsync(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                total += n;
            }

            return Results.Text($"{Convert.ToHexString(hash.GetHashAndReset())}:{total}");
        });
        app.MapGet("/ok", (HttpContext http) =>
        {
            http.Response.ContentLength = 2;
            return http.Response.WriteAsync("ok");
        });
        app.MapGet("/any-peer", () => "peer").RequireMeshPeer();
        app.MapGet("/ci", () => "ci").RequireMeshPeer("ci");
        app.MapGet("/admin", () => "admin").RequireMeshPeer("tag:admin");
        app.MapGroup("/group").RequireMeshPeer("CI").MapGet("/x", () => "group");
    }

    /// <summary>The addresses Kestrel reports it serves on.</summary>
    public static ICollection<string> Addresses(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;

    /// <summary>The loopback URL among them (http://127.0.0.1:port).</summary>
    public static Uri LoopbackUrl(WebApplication app) =>
        new(Addresses(app).Single(a => a.StartsWith("http://127.0.0.1:", StringComparison.Ordinal)));

    public static IPEndPoint AnyLoopbackPort => new(IPAddress.Loopback, 0);
}
