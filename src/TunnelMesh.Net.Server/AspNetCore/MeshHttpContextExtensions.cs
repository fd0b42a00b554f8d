using TunnelMesh.Net;
using TunnelMesh.Net.Server.AspNetCore;

namespace Microsoft.AspNetCore.Http;

/// <summary>Who is calling, for requests that came over the mesh.</summary>
public static class MeshHttpContextExtensions
{
    /// <summary>
    /// The mesh peer that sent this request (name, key, addresses, tags), or null when the request did not come
    /// over the mesh (a normal socket endpoint, TestServer, …).
    /// </summary>
    /// <example>
    /// <code>
    /// app.MapGet("/whoami", (HttpContext http) => http.GetMeshPeer()?.Name ?? "not on the mesh");
    /// </code>
    /// </example>
    public static MeshPeerIdentity? GetMeshPeer(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Features.Get<IMeshPeerFeature>()?.Peer;
    }
}
