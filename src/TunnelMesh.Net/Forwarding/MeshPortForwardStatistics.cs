namespace TunnelMesh.Net.Forwarding;

/// <summary>A snapshot of a <see cref="MeshPortForwarder"/>'s counters (<see cref="MeshPortForwarder.GetStatistics"/>).</summary>
/// <param name="Accepted">Mesh connections accepted (including those then rejected, denied or failed).</param>
/// <param name="Active">Connections being connected or relayed now.</param>
/// <param name="Rejected">Connections reset at once because <see cref="MeshPortForwardOptions.MaxConnections"/> were open.</param>
/// <param name="Denied">Connections reset because the peer carries none of <see cref="MeshPortForwardOptions.AllowedTags"/>.</param>
/// <param name="FailedConnects">Connections reset because the target refused, timed out or could not be resolved.</param>
/// <param name="Forwarded">Connections whose target connect succeeded (relayed).</param>
/// <param name="BytesToTarget">Bytes relayed from mesh peers to the target.</param>
/// <param name="BytesFromTarget">Bytes relayed from the target to mesh peers.</param>
public sealed record MeshPortForwardStatistics(
    long Accepted,
    long Active,
    long Rejected,
    long Denied,
    long FailedConnects,
    long Forwarded,
    long BytesToTarget,
    long BytesFromTarget);
