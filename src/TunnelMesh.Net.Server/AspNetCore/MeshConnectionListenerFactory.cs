using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace TunnelMesh.Net.Server.AspNetCore;

/// <summary>
/// Kestrel's transport for <see cref="MeshEndPoint"/>s. It claims only those (<see cref="CanBind"/>), so the socket
/// transport keeps serving IP endpoints beside it. Kestrel binds while the web host starts, which can come before
/// other hosted services (the node's among them): the factory therefore asks for a started node itself.
/// </summary>
internal sealed class MeshConnectionListenerFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly IServiceProvider _services;
    private readonly ILogger _logger;

    public MeshConnectionListenerFactory(IServiceProvider services, ILoggerFactory? loggerFactory = null)
    {
        _services = services;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("TunnelMesh.Net.Server.AspNetCore.MeshTransport");
    }

    public bool CanBind(EndPoint endpoint) => endpoint is MeshEndPoint;

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not MeshEndPoint mesh)
        {
            throw new NotSupportedException($"{endpoint} is not a mesh endpoint; the mesh transport binds only {nameof(MeshEndPoint)}s.");
        }

        MeshNode node = mesh.Node ?? await _services.GetStartedMeshNodeAsync(mesh.NodeName, cancellationToken).ConfigureAwait(false);
        if (!node.IsRunning)
        {
            throw new InvalidOperationException($"Kestrel cannot listen on {mesh}: the node is not started. Start it before the web host (or register it with AddMeshNode).");
        }

        MeshTcpListener listener = await node.ListenAsync(mesh.Port, cancellationToken).ConfigureAwait(false);
        AspNetCoreLog.Listening(_logger, listener.LocalEndPoint.Address, listener.LocalEndPoint.Port, mesh.ToString());
        return new MeshConnectionListener(node, listener, mesh, _logger);
    }
}
