using System.Net;

namespace TunnelMesh.Net.Tests.Node;

public sealed class WgQuickConfigTests
{
    private static readonly string Priv = NodePrivateKey.Generate().ToBase64();
    private static readonly string Pub1 = NodePrivateKey.Generate().PublicKey.ToString();
    private static readonly string Pub2 = NodePrivateKey.Generate().PublicKey.ToString();

    [Fact]
    public void Reads_a_typical_wg_quick_file()
    {
        var psk = Convert.ToBase64String(new byte[32].Select((_, i) => (byte)i).ToArray());
        var options = MeshNodeOptions.FromWgQuick($"""
            # a comment
            [Interface]
            PrivateKey = {Priv}
            ListenPort = 51820
            Address = 10.7.0.1/24, fd00:7::1/64
            DNS = 1.1.1.1
            MTU = 1380
            PostUp = iptables -A FORWARD -i %i -j ACCEPT

            [Peer]
            PublicKey = {Pub1}
            PresharedKey = {psk}
            Endpoint = 127.0.0.1:51821
            AllowedIPs = 10.7.0.2/32, 10.8.0.0/16
            AllowedIPs = fd00:7::2/128
            PersistentKeepalive = 25

            [peer]
            publickey = {Pub2}
            endpoint = [::1]:5000
            allowedips = 0.0.0.0/0 # everything else
            """);

        Assert.Equal(Priv, options.PrivateKey!.ToBase64());
        Assert.Equal(51820, options.ListenPort);
        Assert.Equal(1380, options.Mtu);
        Assert.Equal([IPAddress.Parse("10.7.0.1"), IPAddress.Parse("fd00:7::1")], options.Addresses);
        Assert.Equal(2, options.Peers.Count);
        var p1 = options.Peers[0];
        Assert.Equal(Pub1, p1.PublicKey.ToString());
        Assert.Equal(psk, p1.PresharedKey);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 51821), p1.Endpoint);
        Assert.Equal(["10.7.0.2/32", "10.8.0.0/16", "fd00:7::2/128"], p1.AllowedIPs.Select(n => n.ToString()));
        Assert.Equal(TimeSpan.FromSeconds(25), p1.PersistentKeepalive);
        var p2 = options.Peers[1];
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 5000), p2.Endpoint);
        Assert.Equal("0.0.0.0/0", p2.AllowedIPs.Single().ToString());
        Assert.Null(p2.PersistentKeepalive);
    }

    [Fact]
    public void Allowed_ips_with_host_bits_are_masked_like_wg_does()
    {
        var options = MeshNodeOptions.FromWgQuick($"[Interface]\nPrivateKey={Priv}\n[Peer]\nPublicKey={Pub1}\nAllowedIPs=10.1.2.3/16\nEndpoint=peer.example:51820\n");
        Assert.Equal("10.1.0.0/16", options.Peers[0].AllowedIPs[0].ToString());
        Assert.Equal(new DnsEndPoint("peer.example", 51820), options.Peers[0].Endpoint);
    }

    [Theory]
    [InlineData("[Interface]\nPrivateKey = nope\n", 2, "PrivateKey")]
    [InlineData("[Interface]\nPrivateKey = {priv}\nListenPort = 70000\n", 3, "ListenPort")]
    [InlineData("[Interface]\nPrivateKey = {priv}\nBogus = 1\n", 3, "Bogus")]
    [InlineData("[Interface]\nPrivateKey = {priv}\n[Peer]\nPublicKey = {pub}\nAllowedIPs = 10.0.0.0/33\n", 5, "AllowedIPs")]
    [InlineData("[Interface]\nPrivateKey = {priv}\n[Peer]\nPublicKey = {pub}\nEndpoint = ::1:51820\n", 5, "Endpoint")]
    [InlineData("[Interface]\nPrivateKey = {priv}\n[Peer]\nAllowedIPs = 10.0.0.0/8\n", 3, "PublicKey")]
    [InlineData("PrivateKey = {priv}\n", 1, "PrivateKey")]
    [InlineData("[Interface]\nPrivateKey = {priv}\n[Peer]\nPublicKey = {pub}\nPersistentKeepalive = soon\n", 5, "PersistentKeepalive")]
    [InlineData("[Interface]\n[Wat]\n", 2, "[Wat]")]
    public void A_bad_line_fails_with_its_number_and_key(string text, int line, string key)
    {
        var ex = Assert.Throws<MeshConfigurationException>(() =>
            MeshNodeOptions.FromWgQuick(text.Replace("{priv}", Priv).Replace("{pub}", Pub1)));
        Assert.Equal(line, ex.Line);
        Assert.Equal(key, ex.Option);
        Assert.Contains($"line {line}", ex.Message);
    }
}
