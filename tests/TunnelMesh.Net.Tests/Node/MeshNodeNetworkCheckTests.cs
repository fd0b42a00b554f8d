using System.Net;

namespace TunnelMesh.Net.Tests.Node;

/// <summary>How netcheck tells easy NATs from hard ones from its STUN answers.</summary>
public class MeshNodeNetworkCheckTests
{
    private static MeshStunProbe Probe(string destination, string? reflexive) =>
        new("stun", IPEndPoint.Parse(destination), reflexive is null ? null : IPEndPoint.Parse(reflexive), null, reflexive is null ? "timeout" : null);

    [Fact]
    public void Same_reflexive_endpoint_from_two_destinations_is_easy_different_is_hard_one_is_unknown()
    {
        Assert.Equal(MeshNatMapping.EndpointIndependent, MeshNodeNetworkCheck.Classify(
            [Probe("203.0.113.10:3478", "203.0.113.1:41641"), Probe("203.0.113.10:3479", "203.0.113.1:41641")]));
        Assert.Equal(MeshNatMapping.EndpointDependent, MeshNodeNetworkCheck.Classify(
            [Probe("203.0.113.10:3478", "203.0.113.1:41641"), Probe("203.0.113.10:3479", "203.0.113.1:50123")]));
        Assert.Equal(MeshNatMapping.EndpointDependent, MeshNodeNetworkCheck.Classify(
            [Probe("203.0.113.10:3478", "203.0.113.1:41641"), Probe("203.0.113.20:3478", "203.0.113.2:41641")]));
        Assert.Equal(MeshNatMapping.Unknown, MeshNodeNetworkCheck.Classify([Probe("203.0.113.10:3478", "203.0.113.1:41641")]));
        Assert.Equal(MeshNatMapping.Unknown, MeshNodeNetworkCheck.Classify(
            [Probe("203.0.113.10:3478", "203.0.113.1:41641"), Probe("203.0.113.10:3479", null)]));
        // The same destination asked twice (one server advertised under two names) is one destination.
        Assert.Equal(MeshNatMapping.Unknown, MeshNodeNetworkCheck.Classify(
            [Probe("203.0.113.10:3478", "203.0.113.1:41641"), Probe("203.0.113.10:3478", "203.0.113.1:41641")]));
        // One address family each: IPv4 and IPv6 answers are not compared with each other.
        Assert.Equal(MeshNatMapping.Unknown, MeshNodeNetworkCheck.Classify(
            [Probe("203.0.113.10:3478", "203.0.113.1:41641"), Probe("[2001:db8::10]:3478", "[2001:db8::2]:41641")]));
    }

    [Fact]
    public void The_relay_is_timed_at_the_coordinators_health_endpoint_or_the_relay_url_over_http()
    {
        Assert.Equal(new Uri("https://coord.example/api/v1/health"), MeshNodeNetworkCheck.RelayProbeTarget(new Uri("https://coord.example/"), null));
        Assert.Equal(new Uri("https://relay.example:8443/relay"), MeshNodeNetworkCheck.RelayProbeTarget(null, new Uri("wss://relay.example:8443/relay")));
        Assert.Null(MeshNodeNetworkCheck.RelayProbeTarget(null, null));
    }

    [Fact]
    public void A_reflexive_address_that_is_loopback_or_missing_is_not_behind_a_nat()
    {
        Assert.False(MeshNodePortMapping.IsBehindNat(null));
        Assert.False(MeshNodePortMapping.IsBehindNat(IPEndPoint.Parse("127.0.0.1:41641")));
        Assert.False(MeshNodePortMapping.IsBehindNat(IPEndPoint.Parse("[2001:db8::1]:41641")));
        Assert.True(MeshNodePortMapping.IsBehindNat(IPEndPoint.Parse("203.0.113.77:41641"))); // no interface of this machine has it
    }
}
