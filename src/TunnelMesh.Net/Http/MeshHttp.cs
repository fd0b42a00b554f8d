using System.Net;

namespace TunnelMesh.Net.Http;

/// <summary>HTTP over the mesh: a <see cref="SocketsHttpHandler"/> whose connect step dials through a <see cref="MeshNode"/>.</summary>
internal static class MeshHttp
{
    /// <summary>HTTP is request/response: send small writes at once rather than wait for ACKs (Nagle).</summary>
    private static readonly MeshTcpOptions Connection = new() { NoDelay = true };

    public static SocketsHttpHandler CreateHandler(MeshNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return new SocketsHttpHandler
        {
            // Proxies from the environment (HTTP_PROXY) lead out of the mesh; never use them here.
            UseProxy = false,
            ConnectCallback = (context, cancellationToken) => ConnectAsync(node, context.DnsEndPoint, cancellationToken),
        };
    }

    private static async ValueTask<Stream> ConnectAsync(MeshNode node, DnsEndPoint target, CancellationToken cancellationToken)
    {
        var address = node.Resolve(target.Host);
        return await node.DialAsync(new IPEndPoint(address, target.Port), Connection, cancellationToken).ConfigureAwait(false);
    }
}
