namespace TunnelMesh.Net.Server.AspNetCore;

/// <summary>
/// The mesh peer on the other end of a connection that Kestrel accepted on a <see cref="MeshEndPoint"/>: a
/// connection feature, which Kestrel also answers from <c>HttpContext.Features</c>. Absent on connections that
/// did not come over the mesh. Read it with <c>HttpContext.GetMeshPeer()</c>.
/// </summary>
public interface IMeshPeerFeature
{
    /// <summary>Who is calling (<see cref="MeshNode.WhoIs(MeshTcpStream)"/>, taken once when the connection was accepted).</summary>
    MeshPeerIdentity Peer { get; }
}
