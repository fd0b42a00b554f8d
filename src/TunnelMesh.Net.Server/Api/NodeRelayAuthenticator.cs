using Microsoft.AspNetCore.Http;
using TunnelMesh.Net.Server.Relay;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Api;

/// <summary>The relay's gate on the coordinator: a joined, unexpired node by its node token (<see cref="NodeAuthenticator"/>).</summary>
internal sealed class NodeRelayAuthenticator(NodeAuthenticator nodes) : IRelayAuthenticator
{
    public async ValueTask<RelayIdentity?> AuthenticateAsync(HttpContext context, CancellationToken cancellationToken)
    {
        NodeRecord? node = await nodes.AuthenticateAsync(context, cancellationToken).ConfigureAwait(false);
        return node is not null && NodePublicKey.TryParse(node.PublicKey, out NodePublicKey key)
            ? new RelayIdentity(node.Id, key)
            : null;
    }
}
