using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Api;

/// <summary>
/// Checks a node's bearer token (<c>tmnode-&lt;id&gt;-&lt;secret&gt;</c>, from its join): in the
/// <c>Authorization: Bearer …</c> header, or in the <c>access_token</c> query parameter for WebSocket
/// clients that cannot set headers. The map stream, endpoint updates and the relay use it.
/// </summary>
public sealed class NodeAuthenticator
{
    private readonly IMeshStore _store;

    /// <summary>Creates the authenticator over a store.</summary>
    /// <param name="store">The coordinator's store.</param>
    public NodeAuthenticator(IMeshStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
    }

    /// <summary>
    /// The node whose token the request carries; null when there is no token, it is malformed, it
    /// does not match (compared as SHA-256 in constant time), or the node was deleted or expired.
    /// </summary>
    /// <param name="context">The request.</param>
    /// <param name="cancellationToken">Cancels the store lookup.</param>
    public async ValueTask<NodeRecord?> AuthenticateAsync(HttpContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        string? token = BearerToken(context.Request);
        if (token is null)
        {
            StringValues q = context.Request.Query["access_token"];
            token = q.Count == 1 ? q[0] : null;
        }

        return await AuthenticateTokenAsync(token, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The node a token belongs to; null when it does not (see <see cref="AuthenticateAsync"/>).</summary>
    internal async ValueTask<NodeRecord?> AuthenticateTokenAsync(string? token, CancellationToken cancellationToken)
    {
        if (!BearerSecret.TryParse(token, BearerSecret.NodeTokenKind, out long id, out string secret))
        {
            return null;
        }

        NodeRecord? node = await _store.GetNodeAsync(id, cancellationToken).ConfigureAwait(false);
        if (node is null || !BearerSecret.Matches(secret, node.TokenHash) || node.Expired is not null)
        {
            return null;
        }

        return node;
    }

    /// <summary>The credentials of an <c>Authorization: Bearer …</c> header, or null.</summary>
    internal static string? BearerToken(HttpRequest request)
    {
        StringValues h = request.Headers.Authorization;
        if (h.Count != 1 || h[0] is not { } value)
        {
            return null;
        }

        const string Scheme = "Bearer ";
        return value.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) ? value[Scheme.Length..].Trim() : null;
    }
}
