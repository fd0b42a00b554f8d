namespace TunnelMesh.Net.Stack;

/// <summary>Settings of a node's <see cref="NetStack"/>.</summary>
internal sealed class NetStackOptions
{
    /// <summary>The node's IPv4 address as a host-order integer (100.64.0.1 is <c>0x64400001</c>).</summary>
    public required uint Address { get; init; }

    /// <summary>The largest IP packet the stack sends.</summary>
    /// <remarks>
    /// Default 1420: a 1500-byte path minus WireGuard's 80 bytes of IPv6 + UDP + transport overhead,
    /// as wg-quick chooses. Must be between 68 (RFC 791's minimum) and 65535. Larger UDP datagrams
    /// and echo messages are sent as IPv4 fragments.
    /// </remarks>
    public int Mtu { get; init; } = 1420;

    /// <summary>How many datagrams a UDP socket holds before new ones are dropped (<see cref="DropReason.QueueFull"/>).</summary>
    /// <remarks>Default 256.</remarks>
    public int UdpReceiveQueueCapacity { get; init; } = 256;

    /// <summary>How many ICMP error messages (port or protocol unreachable) the stack sends per second at most.</summary>
    /// <remarks>Default 10, with a burst of the same size (a token bucket, like Linux's icmp_ratelimit). 0 sends none.</remarks>
    public int IcmpErrorsPerSecond { get; init; } = 10;

    /// <summary>How many fragmented datagrams are reassembled at once.</summary>
    /// <remarks>Default 64.</remarks>
    public int MaxReassemblyDatagrams { get; init; } = 64;

    /// <summary>How many fragments one datagram may have, duplicates included.</summary>
    /// <remarks>Default 64 (a 64 KiB datagram at MTU 1420 needs 47).</remarks>
    public int MaxFragmentsPerDatagram { get; init; } = 64;

    /// <summary>How long a datagram may take to reassemble before its fragments are dropped.</summary>
    /// <remarks>Default 30 seconds (RFC 791 suggests 15; Linux uses 30).</remarks>
    public TimeSpan ReassemblyTimeout { get; init; } = TimeSpan.FromSeconds(30);

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Mtu, 68, nameof(Mtu));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Mtu, 65535, nameof(Mtu));
        ArgumentOutOfRangeException.ThrowIfLessThan(UdpReceiveQueueCapacity, 1, nameof(UdpReceiveQueueCapacity));
        ArgumentOutOfRangeException.ThrowIfNegative(IcmpErrorsPerSecond, nameof(IcmpErrorsPerSecond));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxReassemblyDatagrams, 1, nameof(MaxReassemblyDatagrams));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxFragmentsPerDatagram, 2, nameof(MaxFragmentsPerDatagram));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ReassemblyTimeout, TimeSpan.Zero, nameof(ReassemblyTimeout));
    }
}
