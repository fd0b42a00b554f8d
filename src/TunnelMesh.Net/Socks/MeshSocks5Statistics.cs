namespace TunnelMesh.Net.Socks;

/// <summary>A snapshot of a <see cref="MeshSocks5Server"/>'s counters (<see cref="MeshSocks5Server.GetStatistics"/>).</summary>
/// <param name="Accepted">Client connections accepted from the listener (including those then rejected).</param>
/// <param name="Active">Client connections open now (handshaking or relaying).</param>
/// <param name="Rejected">Connections closed at once because <see cref="MeshSocks5Options.MaxConnections"/> were open.</param>
/// <param name="Succeeded">CONNECT requests answered with <see cref="Socks5Reply.Succeeded"/> (relayed).</param>
/// <param name="ProtocolErrors">Connections closed for a bad version, truncated or malformed message, or a handshake that was not finished within <see cref="MeshSocks5Options.HandshakeTimeout"/>.</param>
/// <param name="NoAcceptableMethod">Greetings answered with 0xFF (none of the client's methods is offered).</param>
/// <param name="AuthenticationFailures">Username/password sub-negotiations that failed.</param>
/// <param name="FailedByReply">Requests answered with a failure reply, by reply code (codes never sent are absent).</param>
/// <param name="BytesFromClients">Bytes relayed from clients into the mesh.</param>
/// <param name="BytesToClients">Bytes relayed from the mesh to clients.</param>
public sealed record MeshSocks5Statistics(
    long Accepted,
    long Active,
    long Rejected,
    long Succeeded,
    long ProtocolErrors,
    long NoAcceptableMethod,
    long AuthenticationFailures,
    IReadOnlyDictionary<Socks5Reply, long> FailedByReply,
    long BytesFromClients,
    long BytesToClients)
{
    /// <summary>Requests answered with any failure reply.</summary>
    public long Failed => FailedByReply.Values.Sum();
}
