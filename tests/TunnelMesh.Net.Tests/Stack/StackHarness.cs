using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Stack;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Tests.Stack;

/// <summary>
/// An in-memory link: what one stack sends is handed to the peer stack, either at once or when the
/// test pumps the queue. Records a copy of every packet sent.
/// </summary>
internal sealed class TestLink : IPacketOutput
{
    private readonly ConcurrentQueue<PacketBuffer> _queued = new();
    private readonly ConcurrentQueue<byte[]> _sent = new();

    public NetStack? Peer { get; set; }

    /// <summary>When true, packets wait for <see cref="Pump"/>; when false they go to the peer at once.</summary>
    public bool Hold { get; set; }

    /// <summary>When true, packets are discarded (after being recorded).</summary>
    public bool Blackhole { get; set; }

    public int MaxPacketSeen { get; private set; }

    public IReadOnlyList<byte[]> Sent => _sent.ToArray();

    public void SendPacket(PacketBuffer ipPacket)
    {
        Assert.True(ipPacket.Offset >= PacketBuffer.HeadRoom, "packets leave with head room in front");
        MaxPacketSeen = Math.Max(MaxPacketSeen, ipPacket.Length);
        _sent.Enqueue(ipPacket.Span.ToArray());
        if (Blackhole || Peer is null)
        {
            ipPacket.Return();
        }
        else if (Hold)
        {
            _queued.Enqueue(ipPacket);
        }
        else
        {
            Peer.DeliverInbound(ipPacket);
        }
    }

    public int Pump()
    {
        int n = 0;
        while (_queued.TryDequeue(out var packet))
        {
            Peer!.DeliverInbound(packet);
            n++;
        }

        return n;
    }

    public void ClearSent() => _sent.Clear();
}

/// <summary>A logger that counts errors, so a test can tell "dropped and counted" from "caught a bug".</summary>
internal sealed class CountingLogger : ILogger
{
    private int _errors;

    public int Errors => Volatile.Read(ref _errors);

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (logLevel >= LogLevel.Error)
        {
            Interlocked.Increment(ref _errors);
        }
    }
}

/// <summary>Two stacks, A (100.64.0.1) and B (100.64.0.2), joined by two <see cref="TestLink"/>s.</summary>
internal sealed class StackPair
{
    public const uint AddressA = 0x64400001;
    public const uint AddressB = 0x64400002;

    public StackPair(TimeProvider time, int mtu = 1420, int queueCapacity = 256, int icmpErrorsPerSecond = 10)
    {
        Pool = new PacketBufferPool();
        LinkAtoB = new TestLink();
        LinkBtoA = new TestLink();
        A = new NetStack(new NetStackOptions { Address = AddressA, Mtu = mtu, UdpReceiveQueueCapacity = queueCapacity, IcmpErrorsPerSecond = icmpErrorsPerSecond }, LinkAtoB, Pool, DropsA, time, LoggerA);
        B = new NetStack(new NetStackOptions { Address = AddressB, Mtu = mtu, UdpReceiveQueueCapacity = queueCapacity, IcmpErrorsPerSecond = icmpErrorsPerSecond }, LinkBtoA, Pool, DropsB, time, LoggerB);
        LinkAtoB.Peer = B;
        LinkBtoA.Peer = A;
    }

    public PacketBufferPool Pool { get; }

    public DropCounters DropsA { get; } = new();

    public DropCounters DropsB { get; } = new();

    public CountingLogger LoggerA { get; } = new();

    public CountingLogger LoggerB { get; } = new();

    public TestLink LinkAtoB { get; }

    public TestLink LinkBtoA { get; }

    public NetStack A { get; }

    public NetStack B { get; }

    /// <summary>Delivers a crafted packet to B, in a pooled buffer with the head room a decrypted WireGuard packet has.</summary>
    public void DeliverToB(ReadOnlySpan<byte> bytes, int padding = 0) => B.DeliverInbound(Buffer(bytes, padding));

    public PacketBuffer Buffer(ReadOnlySpan<byte> bytes, int padding = 0)
    {
        var buffer = Pool.Rent();
        buffer.Offset = PacketBuffer.HeadRoom + 16;
        buffer.Length = bytes.Length + padding;
        bytes.CopyTo(buffer.Span);
        buffer.Span[bytes.Length..].Clear();
        return buffer;
    }
}
