using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using TunnelMesh.Net.Tests.Hosting;

namespace TunnelMesh.Net.Tests.Forwarding;

/// <summary>services.AddMeshPortForward in a generic host: two forwards on keyed node "b", reached from node "a".</summary>
public sealed class AddMeshPortForwardTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);
    private static readonly IPAddress IpB = IPAddress.Parse("100.64.0.2");

    [Fact]
    public async Task Two_forwards_on_a_named_node_start_with_the_host_and_stop_with_it()
    {
        await using var web = new KernelTarget();
        await using var db = new KernelTarget();
        Task webEcho = web.EchoAllAsync();
        Task dbEcho = db.EchoAllAsync();
        var builder = AddMeshNodeTests.Builder();
        AddMeshNodeTests.AddPair(builder.Services, NodePrivateKey.Generate(), NodePrivateKey.Generate());
        builder.Services.AddMeshPortForward(80, web.EndPoint.ToString(), "b");
        builder.Services.AddMeshPortForward(5432, $"localhost:{db.EndPoint.Port}", "b", o => o.ConnectTimeout = TimeSpan.FromSeconds(5));
        using var host = builder.Build();
        await host.StartAsync().WaitAsync(Limit);

        var a = host.Services.GetRequiredKeyedService<MeshNode>("a");

        // In AddPair only b knows where a is: b's first packet tells a its endpoint.
        await host.Services.GetRequiredKeyedService<MeshNode>("b").PingAsync(IPAddress.Parse("100.64.0.1"), Limit);
        using (var toWeb = await a.DialAsync(IpB, 80).WaitAsync(Limit))
        {
            await MeshPortForwarderTests.EchoRoundTripAsync(toWeb, "GET / HTTP/1.0");
        }

        using (var toDb = await a.DialAsync(IpB, 5432).WaitAsync(Limit))
        {
            await MeshPortForwarderTests.EchoRoundTripAsync(toDb, "SELECT 1");
        }

        Assert.Equal(1, web.AcceptedCount);
        Assert.Equal(1, db.AcceptedCount);
        await host.StopAsync().WaitAsync(Limit);
        Assert.False(host.Services.GetRequiredKeyedService<MeshNode>("b").IsRunning);
    }

    [Theory]
    [InlineData("127.0.0.1", "MeshPortForwardOptions.Target")]
    [InlineData("127.0.0.1:3000", "MeshPortForwardOptions.MaxConnections")]
    public async Task A_bad_target_or_option_fails_the_hosts_start_naming_it(string target, string option)
    {
        var builder = AddMeshNodeTests.Builder();
        AddMeshNodeTests.AddPair(builder.Services, NodePrivateKey.Generate(), NodePrivateKey.Generate());
        builder.Services.AddMeshPortForward(80, target, "b", o => o.MaxConnections = target.Contains(':', StringComparison.Ordinal) ? 0 : 1);
        using var host = builder.Build();
        var error = await Assert.ThrowsAsync<MeshConfigurationException>(() => host.StartAsync().WaitAsync(Limit));
        Assert.Equal(option, error.Option);
        await host.StopAsync().WaitAsync(Limit);
    }
}
