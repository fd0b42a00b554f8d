using System.Net;
using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.Control;

/// <summary>The node's own candidates and the kinds it announces to its peers.</summary>
public sealed class NodeCandidatesTests
{
    [Fact]
    public void Interface_addresses_are_local_STUN_answers_reflexive_and_router_mappings_port_mapped()
    {
        var time = new FakeTimeProvider();
        IReadOnlyList<string> interfaces = ["192.168.1.20:41641", "203.0.113.7:41641", "127.0.0.1:41641"];
        var candidates = new NodeCandidates(() => interfaces, time);
        candidates.SetExtra(["198.51.100.4:60000", "203.0.113.7:41641", "127.0.0.1:41641"], CandidateKind.Reflexive);
        candidates.SetExtra(["198.51.100.4:5351"], CandidateKind.PortMapped);

        // Interfaces first, then the port mapping before the STUN answers: the cap on published
        // endpoints must never cut the mapping, the candidate most likely to work behind a hard NAT.
        Assert.Equal(
            ["192.168.1.20:41641", "203.0.113.7:41641", "127.0.0.1:41641", "198.51.100.4:5351", "198.51.100.4:60000"],
            candidates.Endpoints());
        var kinds = candidates.Current().ToDictionary(c => c.Endpoint.ToIPEndPoint().ToString(), c => c.Kind);
        Assert.Equal(CandidateKind.Local, kinds["192.168.1.20:41641"]);
        Assert.Equal(CandidateKind.Reflexive, kinds["203.0.113.7:41641"]); // a public interface address STUN also saw: no NAT, the internet address
        Assert.Equal(CandidateKind.Local, kinds["127.0.0.1:41641"]);       // loopback stays local even when the STUN server saw it
        Assert.Equal(CandidateKind.Reflexive, kinds["198.51.100.4:60000"]);
        Assert.Equal(CandidateKind.PortMapped, kinds["198.51.100.4:5351"]);

        // Cached for a second (asked on every handshake), fresh after it or after a change.
        interfaces = ["192.168.1.21:41641"];
        Assert.Equal(5, candidates.Current().Count);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Contains(candidates.Current(), c => c.Endpoint.ToIPEndPoint().Equals(IPEndPoint.Parse("192.168.1.21:41641")) && c.Kind == CandidateKind.Local);
        interfaces = ["192.168.1.22:41641"];
        candidates.Invalidate();
        Assert.Contains(candidates.Current(), c => c.Endpoint.ToIPEndPoint().Equals(IPEndPoint.Parse("192.168.1.22:41641")));
    }
}
