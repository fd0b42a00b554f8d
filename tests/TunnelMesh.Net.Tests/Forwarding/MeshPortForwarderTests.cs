using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using TunnelMesh.Net.Forwarding;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Tests.Forwarding;

/// <summary>
/// <see cref="MeshPortForwarder"/> between two static nodes on loopback: node B forwards a mesh port to a
/// kernel TCP listener on 127.0.0.1 (the "existing local service"), node A dials B's mesh address.
/// </summary>
public sealed class MeshPortForwarderTests
{
    private const int MeshPort = 80;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    private static async Task<MeshPortForwarder> ForwardAsync(MeshNode node, EndPoint target, Action<MeshPortForwardOptions>? configure = null)
    {
        var options = new MeshPortForwardOptions { MeshPort = MeshPort, Target = target };
        configure?.Invoke(options);
        var forwarder = new MeshPortForwarder(node, options);
        await forwarder.StartAsync();
        return forwarder;
    }

    private static Task<MeshTcpStream> DialAsync(NodePair pair) => pair.A.DialAsync(NodePair.IpB, MeshPort).WaitAsync(Limit);

    [Fact]
    public async Task Sixteen_MiB_each_way_at_once_arrive_intact()
    {
        const int Size = 16 * 1024 * 1024;
        await using var pair = await NodePair.StartAsync();
        await using var target = new KernelTarget();
        await using var forwarder = await ForwardAsync(pair.B, target.EndPoint);
        Assert.Equal(new IPEndPoint(NodePair.IpB, MeshPort), forwarder.LocalEndPoint);

        byte[] up = new byte[Size];
        byte[] down = new byte[Size];
        new Random(5).NextBytes(up);
        new Random(6).NextBytes(down);

        using var mesh = await DialAsync(pair);
        using var local = await target.NextAsync(Limit);

        // Both sides send and receive at the same time; each ends its sending with a FIN.
        Task<byte[]> meshReceives = Drain.ReadAllHashAsync(mesh);
        Task<byte[]> targetReceives = Drain.ReceiveAllHashAsync(local);
        Task meshSends = Task.Run(async () =>
        {
            for (int i = 0; i < Size; i += 60_000)
            {
                await mesh.WriteAsync(up.AsMemory(i, Math.Min(60_000, Size - i)));
            }

            await mesh.ShutdownSendAsync();
        });
        Task targetSends = Task.Run(async () =>
        {
            await local.SendAsync(down, SocketFlags.None);
            local.Shutdown(SocketShutdown.Send);
        });

        var all = TimeSpan.FromMinutes(3);
        await Task.WhenAll(meshSends, targetSends).Within(all, "16 MiB sent each way");
        Assert.Equal(SHA256.HashData(up), await targetReceives.Within(all, "the target received everything"));
        Assert.Equal(SHA256.HashData(down), await meshReceives.Within(all, "the mesh peer received everything"));

        await TaskTimeouts.Until(() => forwarder.GetStatistics().Active == 0, Limit, "the forwarded connection closed");
        var stats = forwarder.GetStatistics();
        Assert.Equal(1, stats.Accepted);
        Assert.Equal(1, stats.Forwarded);
        Assert.Equal(Size, stats.BytesToTarget);
        Assert.Equal(Size, stats.BytesFromTarget);
        Assert.Equal(0, stats.FailedConnects);
    }

    [Fact]
    public async Task A_half_close_from_the_mesh_peer_reaches_the_target_and_the_answer_still_comes_back()
    {
        await using var pair = await NodePair.StartAsync();
        await using var target = new KernelTarget();
        await using var forwarder = await ForwardAsync(pair.B, target.EndPoint);

        using var mesh = await DialAsync(pair);
        using var local = await target.NextAsync(Limit);
        await mesh.WriteAsync("request"u8.ToArray());
        await mesh.ShutdownSendAsync();

        // The target sees the end of the request (FIN passed on), then answers on its still open half.
        Assert.Equal("request", Encoding.ASCII.GetString(await Drain.ReceiveAllAsync(local).Within(Limit, "the target read to the end")));
        await local.SendAsync("answer"u8.ToArray(), SocketFlags.None);
        local.Shutdown(SocketShutdown.Send);
        Assert.Equal("answer", Encoding.ASCII.GetString(await Drain.ReadAllAsync(mesh).Within(Limit, "the mesh peer read the answer to the end")));
    }

    [Fact]
    public async Task A_half_close_from_the_target_reaches_the_mesh_peer_which_can_still_send()
    {
        await using var pair = await NodePair.StartAsync();
        await using var target = new KernelTarget();
        await using var forwarder = await ForwardAsync(pair.B, target.EndPoint);

        using var mesh = await DialAsync(pair);
        using var local = await target.NextAsync(Limit);
        await local.SendAsync("banner"u8.ToArray(), SocketFlags.None);
        local.Shutdown(SocketShutdown.Send);

        Assert.Equal("banner", Encoding.ASCII.GetString(await Drain.ReadAllAsync(mesh).Within(Limit, "the mesh peer read to the end")));
        await mesh.WriteAsync("late reply"u8.ToArray());
        await mesh.ShutdownSendAsync();
        Assert.Equal("late reply", Encoding.ASCII.GetString(await Drain.ReceiveAllAsync(local).Within(Limit, "the target read the reply to the end")));
        await TaskTimeouts.Until(() => forwarder.GetStatistics().Active == 0, Limit, "the connection closed once both directions were done");
    }

    [Fact]
    public async Task A_refused_target_resets_the_mesh_connection_and_is_counted()
    {
        await using var pair = await NodePair.StartAsync();
        await using var forwarder = await ForwardAsync(pair.B, KernelTarget.Refusing());

        using var mesh = await DialAsync(pair);
        var reset = await Assert.ThrowsAsync<IOException>(() => Drain.ReadAllAsync(mesh).Within(Limit, "the mesh connection ended"));
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(reset.InnerException).SocketErrorCode);

        await TaskTimeouts.Until(() => forwarder.GetStatistics().Active == 0, Limit, "the connection was dropped");
        var stats = forwarder.GetStatistics();
        Assert.Equal(1, stats.FailedConnects);
        Assert.Equal(0, stats.Forwarded);

        // The same counts on the forwarder's meter, tagged with its endpoint.
        string endpoint = forwarder.LocalEndPoint.ToString();
        var seen = new Dictionary<string, long>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == MeshPortForwarder.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var t = tags.ToArray().ToDictionary(k => k.Key, k => k.Value?.ToString());
            if (t.GetValueOrDefault("endpoint") == endpoint)
            {
                seen[instrument.Name + (t.TryGetValue("reason", out var r) ? "/" + r : "")] = value;
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.Equal(1, seen["tunnelmesh.forward.connections.accepted"]);
        Assert.Equal(0, seen["tunnelmesh.forward.connections.active"]);
        Assert.Equal(1, seen["tunnelmesh.forward.connections.refused/target"]);
        Assert.Equal(0, seen["tunnelmesh.forward.connections.refused/tag"]);
    }

    [Fact]
    public async Task AllowedTags_refuses_an_untagged_static_peer()
    {
        await using var pair = await NodePair.StartAsync();
        await using var target = new KernelTarget();
        await using var forwarder = await ForwardAsync(pair.B, target.EndPoint, o => o.AllowedTags.Add("tag:web"));

        Assert.Empty(pair.B.WhoIs(NodePair.IpA)!.Tags); // a static peer has no tags
        using var mesh = await DialAsync(pair);
        var reset = await Assert.ThrowsAsync<IOException>(() => Drain.ReadAllAsync(mesh).Within(Limit, "the mesh connection ended"));
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(reset.InnerException).SocketErrorCode);

        await TaskTimeouts.Until(() => forwarder.GetStatistics().Active == 0, Limit, "the connection was dropped");
        Assert.Equal(1, forwarder.GetStatistics().Denied);
        Assert.Equal(0, forwarder.GetStatistics().Forwarded);
        Assert.Equal(0, target.AcceptedCount); // the target was never contacted
    }

    [Fact]
    public async Task MaxConnections_resets_the_connection_beyond_the_limit()
    {
        await using var pair = await NodePair.StartAsync();
        await using var target = new KernelTarget();
        Task echo = target.EchoAllAsync();
        await using var forwarder = await ForwardAsync(pair.B, target.EndPoint, o => o.MaxConnections = 1);

        using var first = await DialAsync(pair);
        await EchoRoundTripAsync(first, "one");

        using var second = await DialAsync(pair);
        var reset = await Assert.ThrowsAsync<IOException>(() => Drain.ReadAllAsync(second).Within(Limit, "the second connection ended"));
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(reset.InnerException).SocketErrorCode);
        Assert.Equal(1, forwarder.GetStatistics().Rejected);

        // Once the first one is finished, there is room again.
        await first.ShutdownSendAsync();
        Assert.Empty(await Drain.ReadAllAsync(first).Within(Limit, "the first connection ended"));
        await TaskTimeouts.Until(() => forwarder.GetStatistics().Active == 0, Limit, "the first connection closed");
        using var third = await DialAsync(pair);
        await EchoRoundTripAsync(third, "three");
        Assert.Equal(2, forwarder.GetStatistics().Forwarded);
    }

    [Fact]
    public async Task Dispose_resets_open_connections_and_frees_the_mesh_port()
    {
        await using var pair = await NodePair.StartAsync();
        await using var target = new KernelTarget();
        var forwarder = await ForwardAsync(pair.B, target.EndPoint);

        using var mesh = await DialAsync(pair);
        using var local = await target.NextAsync(Limit);
        await mesh.WriteAsync("x"u8.ToArray());
        byte[] one = new byte[1];
        Assert.Equal(1, await local.ReceiveAsync(one, SocketFlags.None).WaitAsync(Limit));

        await forwarder.DisposeAsync().AsTask().Within(Limit, "the forwarder was disposed");
        await forwarder.DisposeAsync(); // twice is harmless

        var reset = await Assert.ThrowsAsync<IOException>(() => Drain.ReadAllAsync(mesh).Within(Limit, "the mesh connection ended"));
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(reset.InnerException).SocketErrorCode);
        var targetReset = await Assert.ThrowsAsync<SocketException>(() => Drain.ReceiveAllAsync(local).Within(Limit, "the target connection ended"));
        Assert.Equal(SocketError.ConnectionReset, targetReset.SocketErrorCode);

        Assert.Equal(0, forwarder.GetStatistics().Active);
        await using var again = await pair.B.ListenAsync(MeshPort);
        Assert.Equal(MeshPort, again.LocalEndPoint.Port);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => forwarder.StartAsync());
    }

    [Fact]
    public async Task Two_forwarders_cannot_share_a_mesh_port_and_a_forwarder_starts_once()
    {
        await using var pair = await NodePair.StartAsync();
        await using var forwarder = await ForwardAsync(pair.B, KernelTarget.Refusing());
        await Assert.ThrowsAsync<InvalidOperationException>(() => forwarder.StartAsync());
        await using var second = new MeshPortForwarder(pair.B, new MeshPortForwardOptions { MeshPort = MeshPort, Target = KernelTarget.Refusing() });
        await Assert.ThrowsAsync<SocketException>(() => second.StartAsync());
    }

    public static TheoryData<string, Action<MeshPortForwardOptions>> InvalidOptions => new()
    {
        { "MeshPort", o => o.MeshPort = 0 },
        { "MeshPort", o => o.MeshPort = 65536 },
        { "Target", o => o.Target = null },
        { "Target", o => o.Target = new DnsEndPoint("localhost", 0) },
        { "Target", o => o.Target = new System.Net.Sockets.UnixDomainSocketEndPoint("/tmp/x.sock") },
        { "ConnectTimeout", o => o.ConnectTimeout = TimeSpan.Zero },
        { "ConnectTimeout", o => o.ConnectTimeout = TimeSpan.FromHours(1) },
        { "MaxConnections", o => o.MaxConnections = 0 },
        { "AllowedTags", o => o.AllowedTags.Add(" ") },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public async Task An_invalid_option_is_named_at_start(string option, Action<MeshPortForwardOptions> spoil)
    {
        var key = NodePrivateKey.Generate();
        await using var node = new MeshNode(NodePair.Options(key, NodePair.IpA, NodePrivateKey.Generate().PublicKey, NodePair.IpB, null, null));
        var options = new MeshPortForwardOptions { MeshPort = 80, Target = new IPEndPoint(IPAddress.Loopback, 3000) };
        spoil(options);
        await using var forwarder = new MeshPortForwarder(node, options);
        var error = await Assert.ThrowsAsync<MeshConfigurationException>(() => forwarder.StartAsync());
        Assert.Equal("MeshPortForwardOptions." + option, error.Option);
        Assert.StartsWith("MeshPortForwardOptions." + option + ": ", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("127.0.0.1:3000", "127.0.0.1:3000")]
    [InlineData("[::1]:5432", "[::1]:5432")]
    [InlineData(" localhost:8080 ", "Unspecified/localhost:8080")]
    public void ParseTarget_reads_host_port(string text, string expected) =>
        Assert.Equal(expected, MeshPortForwardOptions.ParseTarget(text).ToString());

    [Theory]
    [InlineData("3000")]
    [InlineData("localhost")]
    [InlineData(":80")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("::1:80")]
    [InlineData("bad host:80")]
    public void ParseTarget_refuses_what_is_not_host_port(string text)
    {
        var error = Assert.Throws<MeshConfigurationException>(() => MeshPortForwardOptions.ParseTarget(text));
        Assert.Equal("MeshPortForwardOptions.Target", error.Option);
        Assert.Contains(text, error.Message, StringComparison.Ordinal);
    }

    internal static async Task EchoRoundTripAsync(MeshTcpStream mesh, string text)
    {
        byte[] sent = Encoding.ASCII.GetBytes(text);
        await mesh.WriteAsync(sent);
        byte[] back = new byte[sent.Length];
        await mesh.ReadExactlyAsync(back).AsTask().Within(Limit, $"the echo of '{text}'");
        Assert.Equal(text, Encoding.ASCII.GetString(back));
    }
}
