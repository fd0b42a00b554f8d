using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Transport.PortMapping;
using TunnelMesh.Net.Wire.PortMapping;

namespace TunnelMesh.Net.Tests.Transport.PortMapping;

/// <summary>
/// The client and the mapper against a scripted responder on loopback (127.0.0.x:5351): the
/// fallback from PCP to NAT-PMP, forged and stray answers, renewal and delete. The real gateway
/// (miniupnpd) is in <see cref="MiniupnpdPortMappingTests"/>.
/// </summary>
public class PortMappingClientTests
{
    private static readonly IPAddress External = IPAddress.Parse("203.0.113.7");

    private static IPAddress NextGatewayAddress() => new([127, 0, 77, (byte)Random.Shared.Next(2, 250)]);

    private static Socket LoopbackSocket()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return s;
    }

    private static byte[] PcpAnswer(byte[] request, uint lifetime, ushort externalPort, uint epoch = 100, byte result = PcpSpec.ResultSuccess, PcpNonce? nonce = null)
    {
        var body = request.AsSpan(PcpSpec.HeaderLength);
        var answer = new byte[60];
        PcpMessage.WriteMapResponse(answer, new PcpResponse(
            PcpSpec.OpMap, result, lifetime, epoch, true, nonce ?? PcpNonce.Read(body), body[12],
            BinaryPrimitives.ReadUInt16BigEndian(body[16..]), externalPort, External));
        return answer;
    }

    [Fact]
    public async Task Pcp_mapping_survives_forged_and_stray_answers_which_are_counted()
    {
        await using var gateway = new ScriptedGateway(NextGatewayAddress(), request =>
        [
            (PcpAnswer(request, 3600, 50000), true),                                                  // right content, wrong source port
            (PcpAnswer(request, 3600, 50001, nonce: new PcpNonce(1, 2)), false),                      // another nonce
            (Convert.FromHexString("028000000000000000000064000000000000000000000000"), false),      // ANNOUNCE, not MAP
            (PcpAnswer(request, 3600, 50002).AsSpan(0, 58).ToArray(), false),                          // cut short
            (PcpAnswer(request, 3600, 50003), false),                                                  // the answer
        ]);
        var drops = new DropCounters();
        using var client = new PortMappingClient(LoopbackSocket(), gateway.Address, IPAddress.Loopback, drops, TimeProvider.System);

        var lease = await client.MapAsync(41641, TimeSpan.FromHours(2), null, CancellationToken.None);

        Assert.NotNull(lease);
        Assert.Equal(MeshPortMappingProtocol.Pcp, lease.Protocol);
        Assert.Equal(new IPEndPoint(External, 50003), lease.External);
        Assert.Equal(TimeSpan.FromSeconds(3600), lease.Lifetime);
        Assert.Equal(4, drops.Get(DropReason.PortMappingUnmatched));
        Assert.True(gateway.Requests.Reader.TryRead(out var sent));
        Assert.Equal(60, sent.Length);
        Assert.Equal("00000000000000000000FFFF7F000001", Convert.ToHexString(sent, 8, 16)); // the client address
        Assert.Equal(41641, BinaryPrimitives.ReadUInt16BigEndian(sent.AsSpan(40)));
        Assert.Equal(7200u, BinaryPrimitives.ReadUInt32BigEndian(sent.AsSpan(4)));
    }

    [Fact]
    public async Task A_nat_pmp_only_gateway_gets_nat_pmp_after_refusing_pcp_version_2()
    {
        await using var gateway = new ScriptedGateway(NextGatewayAddress(), request => request[0] switch
        {
            PcpSpec.Version => [(Convert.FromHexString("0081000100000064"), false)],
            _ when request.Length == 2 => [(Convert.FromHexString("008000000000006" + "4CB007107"), false)],
            _ => [(Convert.FromHexString("0081000000000064A2A9C35000000E10"), false)],
        });
        var drops = new DropCounters();
        using var client = new PortMappingClient(LoopbackSocket(), gateway.Address, IPAddress.Loopback, drops, TimeProvider.System);

        var lease = await client.MapAsync(41641, TimeSpan.FromHours(2), null, CancellationToken.None);

        Assert.NotNull(lease);
        Assert.Equal(MeshPortMappingProtocol.NatPmp, lease.Protocol);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.7"), 50000), lease.External);
        Assert.Equal(TimeSpan.FromSeconds(3600), lease.Lifetime);
        Assert.Equal(0, drops.Get(DropReason.PortMappingUnmatched));
    }

    [Fact]
    public async Task A_refusal_is_an_error_naming_the_result_and_silence_is_null_after_bounded_retries()
    {
        await using (var refusing = new ScriptedGateway(NextGatewayAddress(), request => [(PcpAnswer(request, 0, 0, result: PcpSpec.ResultNotAuthorized), false)]))
        {
            using var client = new PortMappingClient(LoopbackSocket(), refusing.Address, IPAddress.Loopback, new DropCounters(), TimeProvider.System);
            var refused = await Assert.ThrowsAsync<PortMappingRefusedException>(() => client.MapAsync(41641, TimeSpan.FromHours(2), null, CancellationToken.None));
            Assert.Equal(PcpSpec.ResultNotAuthorized, refused.Result);
        }

        await using var silent = new ScriptedGateway(NextGatewayAddress(), _ => []);
        using var quiet = new PortMappingClient(LoopbackSocket(), silent.Address, IPAddress.Loopback, new DropCounters(), TimeProvider.System);
        Assert.Null(await quiet.MapAsync(41641, TimeSpan.FromHours(2), null, CancellationToken.None));
        int requests = 0;
        while (silent.Requests.Reader.TryRead(out _))
        {
            requests++;
        }

        Assert.Equal(2 * PortMappingClient.Attempts, requests); // PCP 3, then NAT-PMP external address 3 (no map request without it)
    }

    [Fact]
    public async Task An_epoch_that_goes_back_marks_the_state_lost()
    {
        uint epoch = 1000;
        await using var gateway = new ScriptedGateway(NextGatewayAddress(), request => [(PcpAnswer(request, 3600, 50000, epoch), false)]);
        using var client = new PortMappingClient(LoopbackSocket(), gateway.Address, IPAddress.Loopback, new DropCounters(), TimeProvider.System);
        var lease = await client.MapAsync(41641, TimeSpan.FromHours(2), null, CancellationToken.None);
        Assert.False(client.StateLost);
        epoch = 3; // the gateway rebooted
        await client.MapAsync(41641, TimeSpan.FromHours(2), lease, CancellationToken.None);
        Assert.True(client.StateLost);
        Assert.Equal(1, client.GatewayRestarts);
    }

    [Fact]
    public async Task The_mapper_renews_at_half_the_lifetime_with_the_same_nonce_and_deletes_on_dispose()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        await using var gateway = new ScriptedGateway(NextGatewayAddress(), request => [(PcpAnswer(request, BinaryPrimitives.ReadUInt32BigEndian(request.AsSpan(4)) == 0 ? 0u : 120u, 50000), false)]);
        var published = new List<IPEndPoint?>();
        var mapper = new PortMapper(
            new PortMapperOptions
            {
                InternalPort = 41641,
                FindGateway = () => gateway.Address,
                CreateSocket = _ => LoopbackSocket(),
                EnableUpnp = false, // the scripted responder speaks PCP only
                ClientAddress = IPAddress.Loopback,
                Drops = new DropCounters(),
                Time = time,
                Changed = e => { lock (published) { published.Add(e); } },
            },
            NullLogger.Instance);
        mapper.Start();

        var first = await ReadAsync(gateway);
        await Until(() => mapper.Current is not null);
        Assert.Equal(new IPEndPoint(External, 50000), mapper.Current!.External);
        lock (published)
        {
            Assert.Equal([new IPEndPoint(External, 50000)], published);
        }

        time.Advance(TimeSpan.FromSeconds(59));
        Assert.False(gateway.Requests.Reader.TryRead(out _)); // not before half the lifetime
        time.Advance(TimeSpan.FromSeconds(1));
        var renewal = await ReadAsync(gateway);
        Assert.Equal(first.AsSpan(24, 12).ToArray(), renewal.AsSpan(24, 12).ToArray()); // the same nonce
        Assert.Equal(50000, BinaryPrimitives.ReadUInt16BigEndian(renewal.AsSpan(42))); // asks for the port it has

        await Until(() => mapper.Attempts == 2);
        await mapper.DisposeAsync();
        var delete = await ReadAsync(gateway);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32BigEndian(delete.AsSpan(4)));
        Assert.Equal(first.AsSpan(24, 12).ToArray(), delete.AsSpan(24, 12).ToArray());
        Assert.Null(mapper.Current);
        await mapper.DisposeAsync(); // twice is fine
    }

    [Fact]
    public void The_default_route_is_read_from_proc_net_route()
    {
        const string table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
            "eth1\t00000000\t016433C6\t0003\t0\t0\t200\t00000000\t0\t0\t0\n" +
            "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
            "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
            "eth2\t00000000\t017100CB\t0002\t0\t0\t1\t00000000\t0\t0\t0\n" + // not up
            "garbage line\n";
        Assert.Equal(IPAddress.Parse("192.0.2.1"), DefaultGateway.Parse(table));
        Assert.Null(DefaultGateway.Parse("Iface\tDestination\n"));
    }

    private static async Task<byte[]> ReadAsync(ScriptedGateway gateway)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await gateway.Requests.Reader.ReadAsync(timeout.Token);
    }

    private static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(10);
        }
    }
}
