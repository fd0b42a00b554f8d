using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Microsoft.Extensions.Logging.Abstractions;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.WireGuardTests;

/// <summary><see cref="WireGuardDevice.ConfigurePeer"/>: peers changed in place while the device runs (the coordinator's peer map).</summary>
public sealed class DevicePeerConfigurationTests
{
    private static readonly IPNetwork[] Pool =
    [
        IPNetwork.Parse("100.64.0.1/32"), IPNetwork.Parse("100.64.0.2/32"), IPNetwork.Parse("100.64.0.3/32"),
        IPNetwork.Parse("fd7a:115c:a1e0::1/128"), IPNetwork.Parse("fd7a:115c:a1e0::2/128"), IPNetwork.Parse("10.0.0.0/8"),
    ];

    [Property]
    public Property Allowed_ips_follow_a_model_of_the_last_configuration_and_peers_keep_their_identity() =>
        Prop.ForAll(
            Gen.ListOf(Gen.Zip(Gen.Choose(0, 2), Gen.Choose(0, (1 << Pool.Length) - 1))).ToArbitrary(),
            steps =>
            {
                using var device = new DeviceFixture();
                var keys = Enumerable.Range(0, 3).Select(_ => NodePrivateKey.Generate().PublicKey).ToArray();
                var owner = new Dictionary<IPNetwork, int>();
                var first = new Dictionary<int, WireGuardPeer>();
                foreach (var (peer, mask) in steps)
                {
                    var set = Pool.Where((_, i) => (mask & (1 << i)) != 0).ToArray();
                    bool added = device.Device.ConfigurePeer(new PeerConfig(keys[peer], new byte[32], default, set, null));
                    Assert.Equal(!first.ContainsKey(peer), added);
                    first.TryAdd(peer, device.Device.FindPeer(keys[peer])!);
                    Assert.Same(first[peer], device.Device.FindPeer(keys[peer]));
                    foreach (var network in set)
                    {
                        owner[network] = peer;
                    }

                    foreach (var (network, o) in owner.ToArray())
                    {
                        if (o == peer && !set.Contains(network))
                        {
                            owner.Remove(network);
                        }
                    }

                    for (int p = 0; p < keys.Length; p++)
                    {
                        var expected = owner.Where(kv => kv.Value == p).Select(kv => kv.Key).Order(Comparer<IPNetwork>.Create((x, y) => string.CompareOrdinal(x.ToString(), y.ToString())));
                        var actual = device.Device.AllowedIpsOf(keys[p]).Order(Comparer<IPNetwork>.Create((x, y) => string.CompareOrdinal(x.ToString(), y.ToString())));
                        Assert.Equal(expected, actual);
                    }
                }
            });

    [Fact]
    public void A_new_configured_endpoint_replaces_the_current_one_and_an_unchanged_one_keeps_the_roamed_one()
    {
        using var device = new DeviceFixture();
        var key = NodePrivateKey.Generate().PublicKey;
        var configured = Endpoint.FromIPEndPoint(IPEndPoint.Parse("127.0.0.1:1000"));
        var roamed = Endpoint.FromIPEndPoint(IPEndPoint.Parse("127.0.0.1:2000"));
        IPNetwork[] allowed = [IPNetwork.Parse("100.64.0.2/32")];
        device.Device.ConfigurePeer(new PeerConfig(key, new byte[32], configured, allowed, null));
        var peer = device.Device.FindPeer(key)!;
        peer.SetEndpoint(roamed);

        device.Device.ConfigurePeer(new PeerConfig(key, new byte[32], configured, allowed, null));
        Assert.Equal(roamed, peer.Endpoint);

        var moved = Endpoint.FromIPEndPoint(IPEndPoint.Parse("127.0.0.1:3000"));
        device.Device.ConfigurePeer(new PeerConfig(key, new byte[32], moved, allowed, null));
        Assert.Equal(moved, peer.Endpoint);
        Assert.True(device.Device.HasRouteTo(IPAddress.Parse("100.64.0.2")));

        Assert.True(device.Device.RemovePeer(key));
        Assert.False(device.Device.HasRouteTo(IPAddress.Parse("100.64.0.2")));
        Assert.Null(device.Device.FindPeer(key));
    }

    [Fact]
    public void A_removed_peer_has_its_handshake_secrets_wiped()
    {
        using var device = new DeviceFixture();
        var key = NodePrivateKey.Generate().PublicKey;
        device.Device.ConfigurePeer(new PeerConfig(key, Enumerable.Repeat((byte)7, 32).ToArray(), default, [Pool[0]], null));
        var peer = device.Device.FindPeer(key)!;
        Assert.False(peer.Handshake.HoldsNoSecrets);
        Assert.True(device.Device.RemovePeer(key));
        Assert.True(peer.Handshake.HoldsNoSecrets);
    }

    private sealed class DeviceFixture : IDisposable
    {
        private readonly InMemoryNetwork _network = new();

        public DeviceFixture()
        {
            var pool = new PacketBufferPool();
            Device = new WireGuardDevice(NodePrivateKey.Generate(), _network.CreateTransport(), p => p.Return(), pool, new DropCounters(), TimeProvider.System, NullLogger.Instance);
        }

        public WireGuardDevice Device { get; }

        public void Dispose() => Device.Shutdown();
    }
}
