using Microsoft.AspNetCore.Http;
using TunnelMesh.Net.Server.AspNetCore;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Authorisation by mesh peer identity on endpoints: <c>app.MapGet(…).RequireMeshPeer("admin")</c>.</summary>
public static class MeshPeerEndpointConventionBuilderExtensions
{
    /// <summary>
    /// Lets through only requests that came over the mesh from a peer carrying every one of <paramref name="tags"/>
    /// (each with or without the <c>tag:</c> prefix, any case; none: any mesh peer). Others get 403 with a problem
    /// details body whose <c>detail</c> says why (not over the mesh, or which tag the peer lacks).
    /// </summary>
    /// <remarks>
    /// An endpoint filter: it applies to minimal API handlers and controller actions (and to a route group's
    /// endpoints when called on the group). Tags come from the auth key the peer joined with.
    /// </remarks>
    /// <example>
    /// <code>
    /// app.MapPost("/deploy", Deploy).RequireMeshPeer("ci");
    /// var admin = app.MapGroup("/admin").RequireMeshPeer("admin");
    /// </code>
    /// </example>
    public static TBuilder RequireMeshPeer<TBuilder>(this TBuilder builder, params string[] tags)
        where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(tags);
        foreach (string tag in tags)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(tag, nameof(tags));
        }

        return builder.AddEndpointFilter(new MeshPeerEndpointFilter([.. tags]));
    }
}
