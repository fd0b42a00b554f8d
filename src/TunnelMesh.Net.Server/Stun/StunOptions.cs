using System.Net;

namespace TunnelMesh.Net.Server.Stun;

/// <summary>Settings of the coordinator's STUN responder (RFC 5389 binding requests, for nodes to learn their reflexive endpoint).</summary>
public sealed class StunOptions
{
    /// <summary>The UDP port.</summary>
    /// <remarks>Default 3478 (the STUN port). 0 picks a free port (tests).</remarks>
    public int Port { get; set; } = 3478;

    /// <summary>
    /// More UDP ports to answer on, beside <see cref="Port"/>, with the same bind address. A node that
    /// asks two ports of the coordinator sees whether its NAT maps endpoint-independently (the same
    /// reflexive endpoint from both) or not: <c>MeshNode.CheckNetworkAsync</c> (<c>tunnelmesh netcheck</c>)
    /// needs two destinations to tell. Advertise each in the coordinator's <c>StunEndpoints</c>.
    /// </summary>
    /// <remarks>Default none. Each is 1–65535 (or 0 for a free port, tests), at most 4, none equal to another.</remarks>
    public IList<int> AdditionalPorts { get; } = new List<int>();

    /// <summary>The local address to bind.</summary>
    /// <remarks>Default <see cref="IPAddress.IPv6Any"/>, dual-stack (IPv4 and IPv6); IPv4-only hosts fall back to <see cref="IPAddress.Any"/>.</remarks>
    public IPAddress BindAddress { get; set; } = IPAddress.IPv6Any;

    /// <summary>The largest datagram read; longer ones are dropped as garbage.</summary>
    /// <remarks>Default 548 (RFC 5389 §7.1 asks requests to stay under 576-byte IP datagrams).</remarks>
    public int MaxDatagramSize { get; set; } = 548;

    internal string? Validate()
    {
        if (Port is < 0 or > 65535)
        {
            return $"{nameof(StunOptions)}.{nameof(Port)} must be between 0 and 65535 (it is {Port}).";
        }

        if (AdditionalPorts.Count > 4)
        {
            return $"{nameof(StunOptions)}.{nameof(AdditionalPorts)} has {AdditionalPorts.Count} ports; at most 4.";
        }

        foreach (int port in AdditionalPorts)
        {
            if (port is < 0 or > 65535)
            {
                return $"{nameof(StunOptions)}.{nameof(AdditionalPorts)} must hold ports between 0 and 65535 ({port} is not).";
            }

            if (port != 0 && (port == Port || AdditionalPorts.Count(p => p == port) > 1))
            {
                return $"{nameof(StunOptions)}.{nameof(AdditionalPorts)}: port {port} is given twice.";
            }
        }

        if (BindAddress is null)
        {
            return $"{nameof(StunOptions)}.{nameof(BindAddress)} is required.";
        }

        if (MaxDatagramSize is < 20 or > 65507)
        {
            return $"{nameof(StunOptions)}.{nameof(MaxDatagramSize)} must be between 20 and 65507 (it is {MaxDatagramSize}).";
        }

        return null;
    }
}
