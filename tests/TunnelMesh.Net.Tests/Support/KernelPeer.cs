using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Stack;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Tests.Support;

/// <summary>
/// A <see cref="NetStack"/> whose peer is the Linux kernel: a fresh network namespace, a
/// <see cref="TunLink"/> moved into it (kernel 10.77.x.1, stack 10.77.x.2, x random), and the stack
/// reading from and writing to that link. Kernel-side sockets come from <see cref="CreateKernelSocket"/>.
/// Disposing stops the stack, the link (deleting the device) and the namespace, in that order.
/// </summary>
/// <example>
/// <code>
/// await using var kernel = await KernelPeer.CreateAsync();
/// using var socket = kernel.CreateKernelSocket(SocketType.Stream, ProtocolType.Tcp);
/// await socket.ConnectAsync(new IPEndPoint(kernel.StackAddress, 80));
/// </code>
/// </example>
internal sealed partial class KernelPeer : IAsyncDisposable
{
    private readonly ILoggerFactory _loggerFactory;
    private int _disposed;

    private KernelPeer(NetNamespace ns, TunLink link, NetStack stack, DropCounters drops, ListLoggerProvider logs, ILoggerFactory loggerFactory)
    {
        Namespace = ns;
        Link = link;
        Stack = stack;
        Drops = drops;
        Logs = logs;
        _loggerFactory = loggerFactory;
    }

    /// <summary>The namespace the kernel side lives in.</summary>
    public NetNamespace Namespace { get; }

    /// <summary>The TUN link between kernel and stack (counters, loss knobs).</summary>
    public TunLink Link { get; }

    /// <summary>The stack under test; its output is <see cref="Link"/>, its input the link's receive thread.</summary>
    public NetStack Stack { get; }

    /// <summary>The stack's drop counters.</summary>
    public DropCounters Drops { get; }

    /// <summary>The stack's log lines.</summary>
    public ListLoggerProvider Logs { get; }

    /// <summary>The pool shared by link and stack.</summary>
    public PacketBufferPool Pool => Link.Pool;

    /// <summary>The kernel's address on the link (10.77.x.1).</summary>
    public IPAddress KernelAddress => Link.KernelAddress;

    /// <summary>The stack's address (10.77.x.2).</summary>
    public IPAddress StackAddress => Link.StackAddress;

    /// <summary><see cref="KernelAddress"/> as a host-order integer, as <see cref="NetStack.PingAsync"/> takes it.</summary>
    public uint KernelAddressValue => TunLink.ToUInt32(KernelAddress);

    /// <summary><see cref="StackAddress"/> as a host-order integer (<see cref="NetStack.Address"/>).</summary>
    public uint StackAddressValue => Stack.Address;

    /// <summary>
    /// Creates namespace, link and stack and starts the link. <paramref name="stackOptions"/> builds the
    /// stack's options from its address (default: that address and <paramref name="mtu"/>); the device
    /// gets <paramref name="mtu"/> too. Logs at <paramref name="logLevel"/> and above are kept in <see cref="Logs"/>.
    /// </summary>
    public static async Task<KernelPeer> CreateAsync(int mtu = 1420, Func<uint, NetStackOptions>? stackOptions = null, TimeProvider? time = null, LogLevel logLevel = LogLevel.Debug)
    {
        int subnet = Random.Shared.Next(1, 255);
        var kernelAddress = IPAddress.Parse($"10.77.{subnet}.1");
        var stackAddress = IPAddress.Parse($"10.77.{subnet}.2");
        var ns = await NetNamespace.CreateAsync("tmk");
        TunLink? link = null;
        try
        {
            link = await TunLink.CreateAsync(ns, kernelAddress, stackAddress, mtu);
            var logs = new ListLoggerProvider();
            var loggerFactory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(logLevel));
            uint address = TunLink.ToUInt32(stackAddress);
            var options = stackOptions?.Invoke(address) ?? new NetStackOptions { Address = address, Mtu = mtu };
            var drops = new DropCounters();
            var stack = new NetStack(options, link, link.Pool, drops, time ?? TimeProvider.System, loggerFactory.CreateLogger("NetStack"));
            link.Start(stack.DeliverInbound);
            return new KernelPeer(ns, link, stack, drops, logs, loggerFactory);
        }
        catch
        {
            link?.Dispose();
            await ns.DisposeAsync();
            throw;
        }
    }

    /// <summary>An IPv4 socket inside the namespace: the kernel's end of a conversation with the stack.</summary>
    public Socket CreateKernelSocket(SocketType type, ProtocolType protocol) =>
        Namespace.CreateSocket(AddressFamily.InterNetwork, type, protocol);

    /// <summary>Sets random nftables loss on the link's device inside the namespace (see <see cref="NetNamespace.SetRandomLossAsync"/>); 0 removes it.</summary>
    public Task SetNftLossAsync(int percent) => Namespace.SetRandomLossAsync(percent, Link.DeviceName);

    /// <summary>
    /// Runs the kernel's <c>ping</c> inside the namespace to the stack's address and parses its summary.
    /// Bounded by <paramref name="timeout"/> (default: count × (interval + 0.1 s) + wait + 10 s).
    /// </summary>
    public async Task<PingSummary> KernelPingAsync(int count, TimeSpan interval, int waitSeconds = 1, int payloadSize = 56, TimeSpan? timeout = null)
    {
        var limit = timeout ?? (count * (interval + TimeSpan.FromSeconds(0.1))) + TimeSpan.FromSeconds(waitSeconds + 10);
        var r = await Namespace.ExecAsync(
            "ping",
            ["-n", "-q", "-c", count.ToString(), "-i", interval.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture), "-W", waitSeconds.ToString(), "-s", payloadSize.ToString(), StackAddress.ToString()],
            limit);
        var m = PingSummaryPattern().Match(r.Stdout);
        if (!m.Success)
        {
            throw new InvalidOperationException($"ping printed no summary (exit {r.ExitCode}):\n{r.All}\n{Describe()}");
        }

        return new PingSummary(int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value), r.All);
    }

    /// <summary>Counters, drops and the last log lines, for failure messages.</summary>
    public string Describe(int logLines = 40)
    {
        var lines = Logs.Lines;
        var drops = string.Join(", ", Drops.Snapshot().Select(d => $"{d.Key}={d.Value}"));
        return $"link {Link}\nstack {StackAddress} drops [{drops}]\nlast log lines:\n{string.Join('\n', lines.Skip(Math.Max(0, lines.Count - logLines)))}";
    }

    /// <summary>Disposes the stack, then the link (the device goes), then the namespace. Safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await Stack.DisposeAsync();
            Link.Dispose();
        }
        finally
        {
            await Namespace.DisposeAsync();
            _loggerFactory.Dispose();
        }
    }

    [GeneratedRegex(@"(\d+) packets transmitted, (\d+) (?:packets )?received")]
    private static partial Regex PingSummaryPattern();

    /// <summary>What <c>ping</c> reported.</summary>
    public readonly record struct PingSummary(int Transmitted, int Received, string Output);
}
