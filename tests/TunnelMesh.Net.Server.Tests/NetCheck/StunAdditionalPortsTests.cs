using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TunnelMesh.Net.Server.Stun;
using TunnelMesh.Net.Wire.Stun;

namespace TunnelMesh.Net.Server.Tests.NetCheck;

/// <summary>The STUN responder on more than one port (what netcheck needs to tell easy NATs from hard ones).</summary>
public sealed class StunAdditionalPortsTests
{
    [Fact]
    public async Task Every_port_answers_with_the_same_reflexive_endpoint_for_one_client_socket()
    {
        using var host = Host.CreateDefaultBuilder()
            .ConfigureServices(s => s.AddMeshStun(o =>
            {
                o.Port = 0;
                o.AdditionalPorts.Add(0);
                o.BindAddress = IPAddress.Loopback;
            }))
            .Build();
        await host.StartAsync();
        var responder = host.Services.GetRequiredService<StunResponder>();
        Assert.Equal(2, responder.LocalEndPoints.Count);
        Assert.NotEqual(responder.LocalEndPoints[0].Port, responder.LocalEndPoints[1].Port);

        using var client = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        foreach (var server in responder.LocalEndPoints)
        {
            var request = new byte[28];
            int n = StunMessage.WriteBindingRequest(request, StunTransactionId.NewRandom(), fingerprint: false);
            await client.SendAsync(request.AsMemory(0, n), server);
            var reply = await client.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(server, reply.RemoteEndPoint);
            Assert.True(StunMessage.TryParse(reply.Buffer, out var m));
            Assert.Equal(client.Client.LocalEndPoint, m.Mapped);
        }

        Assert.Equal(2, responder.Answered);
        await host.StopAsync();
    }

    [Theory]
    [InlineData(new[] { 3478 }, "given twice")]
    [InlineData(new[] { 70000 }, "between 0 and 65535")]
    [InlineData(new[] { 1, 2, 3, 4, 5 }, "at most 4")]
    public void Bad_additional_ports_fail_at_start_naming_the_option(int[] ports, string message)
    {
        var options = new StunOptions { Port = 3478 };
        foreach (int p in ports)
        {
            options.AdditionalPorts.Add(p);
        }

        using var services = new ServiceCollection().AddLogging().AddMeshStun(o =>
        {
            o.Port = options.Port;
            foreach (int p in options.AdditionalPorts)
            {
                o.AdditionalPorts.Add(p);
            }
        }).BuildServiceProvider();
        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<StunOptions>>().Value);
        Assert.Contains("StunOptions.AdditionalPorts", error.Message);
        Assert.Contains(message, error.Message);
    }
}
