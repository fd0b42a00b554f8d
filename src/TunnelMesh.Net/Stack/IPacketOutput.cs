using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Stack;

/// <summary>The layer below the stack (the WireGuard device, or a test link) that takes outgoing IP packets.</summary>
internal interface IPacketOutput
{
    /// <summary>
    /// Takes ownership of a complete IPv4 packet: the data starts with the IP header, at most the
    /// stack's MTU long, with at least <see cref="PacketBuffer.HeadRoom"/> bytes free in front of it.
    /// </summary>
    void SendPacket(PacketBuffer ipPacket);
}
