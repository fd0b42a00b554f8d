using System.Net;

namespace TunnelMesh.Net.Transport;

/// <summary>Options of a <see cref="UdpTransport"/>.</summary>
internal sealed class UdpTransportOptions
{
    /// <summary>Default socket buffer size in each direction: 4 MiB.</summary>
    public const int DefaultSocketBufferSize = 4 * 1024 * 1024;

    /// <summary>The local address to bind.</summary>
    /// <remarks>
    /// Default null: a dual-mode IPv6 socket on <c>[::]</c> that also sends to and receives from IPv4
    /// peers (as IPv4-mapped addresses), or an IPv4-only socket on <c>0.0.0.0</c> when the machine has
    /// no IPv6. A specific address binds a socket of that address's family only.
    /// </remarks>
    public IPAddress? BindAddress { get; set; }

    /// <summary>The local port; 0 (the default) picks an ephemeral port.</summary>
    public int Port { get; set; }

    /// <summary>SO_RCVBUF.</summary>
    /// <remarks>
    /// Default 4 MiB (<see cref="DefaultSocketBufferSize"/>) so that bursts at line rate are not lost while
    /// the receive thread is busy decrypting. Linux caps the value at <c>net.core.rmem_max</c> (often
    /// 208 KiB) unless an administrator raises it; the cap is not an error.
    /// </remarks>
    public int ReceiveBufferSize { get; set; } = DefaultSocketBufferSize;

    /// <summary>SO_SNDBUF.</summary>
    /// <remarks>Default 4 MiB; capped by <c>net.core.wmem_max</c> on Linux.</remarks>
    public int SendBufferSize { get; set; } = DefaultSocketBufferSize;

    /// <summary>Datagrams per batched receive or send call.</summary>
    /// <remarks>Default 64. Each receive slot holds a 64 KiB buffer from the pool for the transport's lifetime.</remarks>
    public int BatchSize { get; set; } = 64;

    /// <summary>The pool receive buffers come from.</summary>
    /// <remarks>Default null: <see cref="PacketBufferPool.Shared"/>.</remarks>
    public PacketBufferPool? Pool { get; set; }

    /// <summary>The node's drop counters; send failures are also counted there as <see cref="DropReason.SendFailed"/>.</summary>
    /// <remarks>Default null: counted only in the transport's own statistics.</remarks>
    public DropCounters? Drops { get; set; }

    /// <summary>Use <c>recvmmsg</c>/<c>sendmmsg</c> on Linux.</summary>
    /// <remarks>
    /// Default true. False forces the portable path (one <c>ReceiveFrom</c>/<c>SendTo</c> per datagram,
    /// still allocation-free), which is also used on other systems.
    /// </remarks>
    public bool UseNativeBatching { get; set; } = true;

    /// <summary>Send runs of equal-sized datagrams to one endpoint with UDP segmentation offload (Linux <c>UDP_SEGMENT</c>).</summary>
    /// <remarks>
    /// Default true; used only with <see cref="UseNativeBatching"/> and where the kernel supports it
    /// (Linux 4.18+). The receiver sees ordinary datagrams. If a send is refused for it, the
    /// transport falls back to plain datagrams by itself.
    /// </remarks>
    public bool UseSegmentationOffload { get; set; } = true;

    /// <summary>Let the kernel coalesce received datagrams of one flow (Linux <c>UDP_GRO</c>).</summary>
    /// <remarks>
    /// Default true; used only with <see cref="UseNativeBatching"/> and where the kernel supports it
    /// (Linux 5.0+). The transport cuts coalesced messages back into their datagrams, so the
    /// receiver sees the same datagrams either way, with fewer system calls.
    /// </remarks>
    public bool UseReceiveOffload { get; set; } = true;
}
