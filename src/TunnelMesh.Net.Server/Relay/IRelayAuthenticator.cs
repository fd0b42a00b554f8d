using Microsoft.AspNetCore.Http;

namespace TunnelMesh.Net.Server.Relay;

/// <summary>A joined node as the relay knows it: who it is and the key frames to it are addressed by.</summary>
/// <param name="NodeId">The coordinator's id of the node.</param>
/// <param name="PublicKey">The node's WireGuard public key; frames to this key go to this connection.</param>
public sealed record RelayIdentity(long NodeId, NodePublicKey PublicKey);

/// <summary>
/// Decides whether a request to the relay endpoint comes from a joined node (typically by its bearer
/// node token). Resolved from the request's services for every connection attempt; the relay accepts
/// a WebSocket only when this returns an identity.
/// </summary>
public interface IRelayAuthenticator
{
    /// <summary>The node that made <paramref name="context"/>'s request, or null to refuse it (401).</summary>
    ValueTask<RelayIdentity?> AuthenticateAsync(HttpContext context, CancellationToken cancellationToken);
}
