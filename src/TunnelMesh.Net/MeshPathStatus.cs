using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net;

/// <summary>Turns a peer's path choice (<see cref="PathSnapshot"/>) into the public status.</summary>
internal static class MeshPathStatus
{
    /// <summary>The status with <see cref="MeshPeerStatus.PathKind"/>, candidates and last probe filled in.</summary>
    public static MeshPeerStatus Describe(MeshPeerStatus status, PathSnapshot? snapshot)
    {
        if (snapshot is null)
        {
            return status with { PathKind = status.Path == MeshPeerPath.None ? MeshPathKind.None : MeshPathKind.Direct };
        }

        var candidates = new List<MeshPathCandidate>(snapshot.Candidates.Count);
        foreach (var c in snapshot.Candidates)
        {
            candidates.Add(new MeshPathCandidate(c.Endpoint.ToIPEndPoint(), ToPublic(c.Kind), c.LastPing, c.LastPong, c.RoundTrip));
        }

        var kind = snapshot.Path == PeerPath.Relay ? MeshPathKind.Relay
            : snapshot.Lan ? MeshPathKind.DirectLan
            : MeshPathKind.DirectWan;
        var last = snapshot.LastProbe is { } p ? new MeshProbeResult(p.At, p.Endpoint.ToIPEndPoint(), p.Answered, p.RoundTrip) : null;
        return status with { PathKind = kind, Candidates = candidates, LastProbe = last };
    }

    private static MeshCandidateKind ToPublic(CandidateKind kind) => kind switch
    {
        CandidateKind.Local => MeshCandidateKind.Local,
        CandidateKind.Reflexive => MeshCandidateKind.Reflexive,
        CandidateKind.PortMapped => MeshCandidateKind.PortMapped,
        _ => MeshCandidateKind.Unknown,
    };
}
