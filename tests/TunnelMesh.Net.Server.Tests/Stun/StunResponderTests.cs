using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TunnelMesh.Net.Server.Stun;
using TunnelMesh.Net.Wire.Stun;

namespace TunnelMesh.Net.Server.Tests.Stun;

public sealed class StunResponderTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    private static async Task<IHost> StartHostAsync(Action<StunOptions>? configure = null)
    {
        var host = Host.CreateDefaultBuilder()
            .ConfigureServices(s => s.AddMeshStun(o =>
            {
                o.Port = 0;
                o.BindAddress = IPAddress.Loopback;
                configure?.Invoke(o);
            }))
            .Build();
        await host.StartAsync();
        return host;
    }

    [Fact]
    public async Task Answers_a_binding_request_from_a_plain_udp_client_with_its_address()
    {
        using var host = await StartHostAsync();
        var responder = host.Services.GetRequiredService<StunResponder>();
        using var client = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var id = StunTransactionId.NewRandom();
        var request = new byte[28];
        int n = StunMessage.WriteBindingRequest(request, id, fingerprint: true);
        await client.SendAsync(request.AsMemory(0, n), responder.LocalEndPoint);

        var reply = await client.ReceiveAsync().WaitAsync(Limit);
        Assert.Equal(responder.LocalEndPoint, reply.RemoteEndPoint);
        Assert.True(StunMessage.TryParse(reply.Buffer, out var m));
        Assert.Equal(StunSpec.BindingSuccess, m.Type);
        Assert.Equal(id, m.TransactionId);
        Assert.True(m.HasFingerprint);
        Assert.Equal(client.Client.LocalEndPoint, m.Mapped);
        Assert.Equal(1, responder.Answered);
        await host.StopAsync();
    }

    [Fact]
    public async Task Garbage_and_non_requests_are_dropped_and_counted_and_the_next_request_is_answered()
    {
        using var host = await StartHostAsync();
        var responder = host.Services.GetRequiredService<StunResponder>();
        using var client = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var success = new byte[64];
        int successLength = StunMessage.WriteBindingSuccess(success, StunTransactionId.NewRandom(), new IPEndPoint(IPAddress.Loopback, 1));
        byte[][] garbage =
        [
            [1, 0, 0, 0, 1, 2, 3, 4],                 // a WireGuard-looking datagram
            new byte[600],                             // over the size limit
            success[..successLength],                  // a response, not a request
            Convert.FromHexString("0001000c2112a442b7e7a701bc34d686fa87dfae00200008"), // runs off the end
        ];
        foreach (var g in garbage)
        {
            await client.SendAsync(g, responder.LocalEndPoint);
        }

        var request = new byte[20];
        StunMessage.WriteBindingRequest(request, StunTransactionId.NewRandom(), fingerprint: false);
        await client.SendAsync(request, responder.LocalEndPoint);
        var reply = await client.ReceiveAsync().WaitAsync(Limit);
        Assert.True(StunMessage.TryParse(reply.Buffer, out var m));
        Assert.False(m.HasFingerprint); // none asked, none given
        Assert.Equal(garbage.Length, responder.Dropped); // the socket reads in order: all were seen before the request
        Assert.Equal(1, responder.Answered);
        Assert.Equal(0, client.Available); // no answer to any of the garbage
    }

    [Fact]
    public async Task A_bad_option_fails_the_host_start_and_names_itself()
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => StartHostAsync(o => o.Port = 70000));
        Assert.Contains("StunOptions.Port", ex.Message);
    }
}
