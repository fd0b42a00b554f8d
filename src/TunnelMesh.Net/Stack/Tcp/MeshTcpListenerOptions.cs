namespace TunnelMesh.Net;

/// <summary>Settings of a mesh TCP listener.</summary>
public sealed class MeshTcpListenerOptions
{
    /// <summary>How many established connections wait for <c>AcceptAsync</c> (plus as many half-open ones) before new SYNs are ignored.</summary>
    /// <remarks>Default 128.</remarks>
    public int Backlog { get; init; } = 128;

    /// <summary>The settings of accepted connections.</summary>
    /// <remarks>Default <see cref="MeshTcpOptions.Default"/>.</remarks>
    public MeshTcpOptions Connection { get; init; } = MeshTcpOptions.Default;

    internal void Validate()
    {
        if (Backlog is < 1 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(MeshTcpListenerOptions) + "." + nameof(Backlog), Backlog, "Must be between 1 and 65535.");
        }

        ArgumentNullException.ThrowIfNull(Connection, nameof(MeshTcpListenerOptions) + "." + nameof(Connection));
        Connection.Validate(nameof(MeshTcpListenerOptions) + "." + nameof(Connection));
    }
}
