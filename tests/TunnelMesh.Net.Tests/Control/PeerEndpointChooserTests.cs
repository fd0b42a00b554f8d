using System.Net;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Tests.Control;

/// <summary>Which of a peer's published endpoints are probed: every usable one, in order, once, at most 16.</summary>
public sealed class PeerEndpointChooserTests
{
    [Fact]
    public void Candidates_keep_every_usable_endpoint_in_order_once_and_skip_the_rest()
    {
        var candidates = PeerEndpointChooser.Candidates(
        [
            "192.0.2.10:41641",      // a LAN address
            "not an endpoint",
            "198.51.100.7",          // no port
            "0.0.0.0:5000",          // unspecified
            "[::]:5000",
            "224.0.0.1:5000",        // multicast
            "[ff02::1]:5000",
            "203.0.113.9:61000",     // a STUN reflexive address
            "192.0.2.10:41641",      // repeated
            "[2001:db8::5]:41641",
        ]);

        Assert.Equal(
            new[] { "192.0.2.10:41641", "203.0.113.9:61000", "[2001:db8::5]:41641" },
            candidates.Select(c => c.ToIPEndPoint().ToString()));
        Assert.Equal(candidates[0], PeerEndpointChooser.Choose(["not an endpoint", "192.0.2.10:41641"]));
    }

    [Fact]
    public void Candidates_are_capped_at_the_published_limit_and_none_give_the_default()
    {
        var many = Enumerable.Range(1, 40).Select(i => $"198.51.100.{i}:7000").ToList();
        Assert.Equal(PeerEndpointChooser.MaxPublished, PeerEndpointChooser.Candidates(many).Count);
        Assert.Empty(PeerEndpointChooser.Candidates(null));
        Assert.Empty(PeerEndpointChooser.Candidates(["0.0.0.0:1"]));
        Assert.Equal(default(Endpoint), PeerEndpointChooser.Choose([]));
    }
}
