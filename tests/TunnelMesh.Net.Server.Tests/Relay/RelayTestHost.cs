using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Server.Relay;

namespace TunnelMesh.Net.Server.Tests.Relay;

/// <summary>A real Kestrel on 127.0.0.1:0 serving only the relay, with bearer tokens the test hands out.</summary>
internal sealed class RelayTestHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TokenAuthenticator _authenticator;

    private RelayTestHost(WebApplication app, TokenAuthenticator authenticator, Uri url)
    {
        _app = app;
        _authenticator = authenticator;
        Url = url;
    }

    /// <summary>ws://127.0.0.1:port/relay.</summary>
    public Uri Url { get; }

    public RelayHub Hub => _app.Services.GetRequiredService<RelayHub>();

    public static async Task<RelayTestHost> StartAsync(Action<MeshRelayOptions>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var authenticator = new TokenAuthenticator();
        builder.Services.AddSingleton<IRelayAuthenticator>(authenticator);
        builder.Services.AddMeshRelay(configure);
        var app = builder.Build();
        app.MapMeshRelay();
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var url = new Uri(address.Replace("http://", "ws://", StringComparison.Ordinal) + "/relay");
        return new RelayTestHost(app, authenticator, url);
    }

    /// <summary>A fresh token that authenticates as <paramref name="key"/>.</summary>
    public string IssueToken(NodePublicKey key)
    {
        string token = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        _authenticator.Tokens[token] = new RelayIdentity(Interlocked.Increment(ref _authenticator.NextId), key);
        return token;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class TokenAuthenticator : IRelayAuthenticator
    {
        public long NextId;

        public ConcurrentDictionary<string, RelayIdentity> Tokens { get; } = new();

        public ValueTask<RelayIdentity?> AuthenticateAsync(HttpContext context, CancellationToken cancellationToken)
        {
            string header = context.Request.Headers.Authorization.ToString();
            return ValueTask.FromResult(
                header.StartsWith("Bearer ", StringComparison.Ordinal) && Tokens.TryGetValue(header["Bearer ".Length..], out var identity)
                    ? identity
                    : null);
        }
    }
}

internal static class Await
{
    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test after <paramref name="limit"/>.</summary>
    public static async Task UntilAsync(Func<bool> condition, TimeSpan limit, Func<string> what)
    {
        var deadline = DateTime.UtcNow + limit;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"{what()} did not happen within {limit}");
            }

            await Task.Delay(10);
        }
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan limit, string what) => UntilAsync(condition, limit, () => what);
}
