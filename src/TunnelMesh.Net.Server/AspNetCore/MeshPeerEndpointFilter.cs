using Microsoft.AspNetCore.Http;

namespace TunnelMesh.Net.Server.AspNetCore;

/// <summary>The filter behind <c>RequireMeshPeer</c>: 403 with a reason unless the caller is a mesh peer with the tags.</summary>
internal sealed class MeshPeerEndpointFilter(string[] tags) : IEndpointFilter
{
    public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        string? refusal = Check(context.HttpContext.GetMeshPeer(), tags, context.HttpContext.Connection.RemoteIpAddress?.ToString());
        return refusal is null
            ? next(context)
            : ValueTask.FromResult<object?>(TypedResults.Problem(detail: refusal, statusCode: StatusCodes.Status403Forbidden, title: "Forbidden"));
    }

    /// <summary>Null when allowed, else the reason for the 403.</summary>
    internal static string? Check(MeshPeerIdentity? peer, string[] tags, string? remote)
    {
        if (peer is null)
        {
            return $"This endpoint serves mesh peers only; the request from {remote ?? "an unknown address"} did not come over the mesh.";
        }

        foreach (string tag in tags)
        {
            if (!peer.HasTag(tag))
            {
                string wanted = tag.StartsWith("tag:", StringComparison.OrdinalIgnoreCase) ? tag : "tag:" + tag;
                string has = peer.Tags.Count == 0 ? "none" : string.Join(", ", peer.Tags);
                return $"The mesh peer {peer.Name ?? peer.PublicKey.ToString()} lacks the tag '{wanted}' (its tags: {has}).";
            }
        }

        return null;
    }
}
