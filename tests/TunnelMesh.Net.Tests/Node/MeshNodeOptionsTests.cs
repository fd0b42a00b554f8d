using System.Net;

namespace TunnelMesh.Net.Tests.Node;

public sealed class MeshNodeOptionsTests
{
    private static MeshNodeOptions Valid()
    {
        var o = new MeshNodeOptions { PrivateKey = NodePrivateKey.Generate(), ListenAddress = IPAddress.Loopback };
        o.Addresses.Add(IPAddress.Parse("100.64.0.1"));
        return o;
    }

    public static TheoryData<string, Action<MeshNodeOptions>> BadOptions => new()
    {
        { "MeshNodeOptions.PrivateKey", o => o.PrivateKey = null },
        { "MeshNodeOptions.ListenPort", o => o.ListenPort = 65536 },
        { "MeshNodeOptions.Mtu", o => o.Mtu = 100 },
        { "MeshNodeOptions.Addresses", o => o.Addresses.Clear() },
        { "MeshNodeOptions.Peers[0].PublicKey", o => o.Peers.Add(new MeshPeerOptions()) },
        { "MeshNodeOptions.Peers[0].PublicKey", o => o.Peers.Add(new MeshPeerOptions { PublicKey = o.PrivateKey!.PublicKey }) },
        { "MeshNodeOptions.Peers[0].PresharedKey", o => o.Peers.Add(new MeshPeerOptions { PublicKey = NodePrivateKey.Generate().PublicKey, PresharedKey = "short" }) },
        { "MeshNodeOptions.Peers[0].PersistentKeepalive", o => o.Peers.Add(new MeshPeerOptions { PublicKey = NodePrivateKey.Generate().PublicKey, PersistentKeepalive = TimeSpan.FromMilliseconds(10) }) },
        { "MeshNodeOptions.Peers[0].Endpoint", o => o.Peers.Add(new MeshPeerOptions { PublicKey = NodePrivateKey.Generate().PublicKey, Endpoint = new IPEndPoint(IPAddress.Loopback, 0) }) },
        { "MeshNodeOptions.Peers[1].PublicKey", o =>
            {
                var k = NodePrivateKey.Generate().PublicKey;
                o.Peers.Add(new MeshPeerOptions { PublicKey = k });
                o.Peers.Add(new MeshPeerOptions { PublicKey = k });
            }
        },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public async Task Bad_options_fail_at_start_naming_the_option(string option, Action<MeshNodeOptions> spoil)
    {
        var options = Valid();
        spoil(options);
        await using var node = new MeshNode(options);
        var ex = await Assert.ThrowsAsync<MeshConfigurationException>(() => node.StartAsync());
        Assert.Equal(option, ex.Option);
        Assert.StartsWith(option, ex.Message);
        Assert.False(node.IsRunning);
    }

    [Fact]
    public void Keys_round_trip_in_wg_base64_form_and_private_keys_do_not_print()
    {
        var key = NodePrivateKey.Generate();
        Assert.Equal(44, key.ToBase64().Length);
        Assert.Equal(key, NodePrivateKey.Parse(key.ToBase64()));
        Assert.Equal(key.PublicKey, NodePublicKey.Parse(key.PublicKey.ToString()));
        Assert.DoesNotContain(key.ToBase64(), key.ToString());
        Assert.Throws<FormatException>(() => NodePublicKey.Parse("AAAA"));
        Assert.False(NodePrivateKey.TryParse(null, out _));
    }

    [Fact]
    public void Public_key_matches_rfc7748_test_vector()
    {
        // RFC 7748 section 6.1: Alice's private key and public key.
        var priv = Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        var pub = Convert.FromHexString("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        Assert.Equal(Convert.ToBase64String(pub), NodePrivateKey.FromBytes(priv).PublicKey.ToString());
    }
}
