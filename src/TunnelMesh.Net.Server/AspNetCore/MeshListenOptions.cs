using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace TunnelMesh.Net.Server.AspNetCore;

/// <summary>Where <c>UseMesh</c> serves: a port on a node's mesh address, and optionally normal ports beside it.</summary>
/// <remarks>
/// Kestrel's rule: once endpoints are configured in code (which <c>UseMesh</c> does), the URLs from
/// <c>ASPNETCORE_URLS</c>, <c>--urls</c> or <c>UseUrls</c> are ignored (Kestrel logs a warning). To keep serving
/// on a normal port as well, name it with <see cref="AlsoListen(IPEndPoint, Action{ListenOptions}?)"/> (or call
/// <c>ListenLocalhost</c>/<c>Listen</c> in <c>ConfigureKestrel</c>). Endpoints from the <c>Kestrel:Endpoints</c>
/// configuration section are served in addition.
/// </remarks>
public sealed class MeshListenOptions
{
    private readonly List<(IPEndPoint EndPoint, Action<ListenOptions>? Configure)> _alsoListen = [];
    private int _port = 80;

    /// <summary>The TCP port on the node's mesh address. Default 80.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not within 1–65535.</exception>
    public int Port
    {
        get => _port;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 65535);
            _port = value;
        }
    }

    /// <summary>The key of the node registered with <c>AddMeshNode("name", …)</c>; null (the default) for the unkeyed node.</summary>
    public string? NodeName { get; set; }

    /// <summary>
    /// A node to serve on instead of one from the host's services. It must be started before the web host starts
    /// (Kestrel binds then) and outlive it. Default null: the node registered with <c>AddMeshNode</c> (see <see cref="NodeName"/>).
    /// </summary>
    public MeshNode? Node { get; set; }

    /// <summary>
    /// Configures Kestrel's endpoint on the mesh (protocols, <c>UseHttps</c>, connection middleware). Default
    /// null: Kestrel's defaults for an endpoint without TLS. For HTTP/2 without TLS (prior knowledge), set <c>Protocols = HttpProtocols.Http2</c>.
    /// </summary>
    public Action<ListenOptions>? ConfigureEndpoint { get; set; }

    /// <summary>The normal endpoints served beside the mesh (see <see cref="AlsoListen(IPEndPoint, Action{ListenOptions}?)"/>).</summary>
    public IReadOnlyList<IPEndPoint> AdditionalEndPoints => _alsoListen.ConvertAll(l => l.EndPoint);

    internal IReadOnlyList<(IPEndPoint EndPoint, Action<ListenOptions>? Configure)> AdditionalListens => _alsoListen;

    internal MeshEndPoint ToEndPoint() => Node is not null ? new MeshEndPoint(Node, Port) : new MeshEndPoint(Port, NodeName);

    /// <summary>Serves on <paramref name="endPoint"/> (a normal socket) too; port 0 picks a free port.</summary>
    /// <returns>These options, for chaining.</returns>
    public MeshListenOptions AlsoListen(IPEndPoint endPoint, Action<ListenOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        _alsoListen.Add((endPoint, configure));
        return this;
    }
}
