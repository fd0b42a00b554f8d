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
            ConnectCallback = async (context, cancellationToken) =>
                await node.DialAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, Connection, cancellationToken).ConfigureAwait(false),
        };
    }
}
