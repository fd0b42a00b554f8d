using System.Net;

namespace TunnelMesh.Net.Server.AspNetCore;

/// <summary>
/// A port on a node's mesh address, as a Kestrel endpoint: <c>KestrelServerOptions.Listen(new MeshEndPoint(80))</c>
/// (or <c>ListenMesh(80)</c>) serves on that port of the node with no TUN device, through the node's own TCP stack.
/// </summary>
/// <remarks>
/// The node is either a given, started <see cref="MeshNode"/> (<see cref="Node"/>), or the node registered in
/// the host's services with <c>AddMeshNode</c>: the unkeyed one when <see cref="NodeName"/> is null, else the one
/// keyed by that name. Kestrel's socket transport keeps serving <see cref="IPEndPoint"/>s next to it.
/// </remarks>
public sealed class MeshEndPoint : EndPoint
{
    /// <summary>A port on the node registered in the host's services (<paramref name="nodeName"/>: its key; null for the unkeyed node).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="port"/> is not within 1–65535.</exception>
    public MeshEndPoint(int port, string? nodeName = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        if (nodeName is not null)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(nodeName);
        }

        Port = port;
        NodeName = nodeName;
    }

    /// <summary>A port on <paramref name="node"/>, which must be started before Kestrel binds (no DI needed).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="port"/> is not within 1–65535.</exception>
    public MeshEndPoint(MeshNode node, int port)
        : this(port)
    {
        ArgumentNullException.ThrowIfNull(node);
        Node = node;
    }

    /// <summary>The TCP port on the node's mesh address.</summary>
    public int Port { get; }

    /// <summary>The key of the node in the host's services; null for the unkeyed node (or when <see cref="Node"/> is given).</summary>
    public string? NodeName { get; }

    /// <summary>The node itself, when the endpoint was made for a given node; null when it comes from the host's services.</summary>
    public MeshNode? Node { get; }

    /// <summary><c>mesh:&lt;node&gt;:&lt;port&gt;</c>, where the node is its key, <c>default</c> for the unkeyed one, or the given node's address.</summary>
    public override string ToString()
    {
        string node = NodeName ?? (Node is { IsRunning: true } n ? n.Address.ToString() : Node is not null ? "node" : "default");
        return $"mesh:{node}:{Port}";
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) =>
        obj is MeshEndPoint other && other.Port == Port && ReferenceEquals(other.Node, Node) && string.Equals(other.NodeName, NodeName, StringComparison.Ordinal);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Port, NodeName, Node);
}
