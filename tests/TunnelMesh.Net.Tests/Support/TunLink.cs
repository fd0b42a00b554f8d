using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using TunnelMesh.Net.Stack;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.Tests.Support;

/// <summary>
/// A TUN device whose far side is a <see cref="NetStack"/>: what the Linux kernel routes into the
/// device is read by a dedicated thread and handed to a delegate (normally
/// <see cref="NetStack.DeliverInbound"/>), and what the stack sends (<see cref="IPacketOutput"/>) is
/// written to the device, where the kernel receives it. The kernel is thus a real IP peer.
/// </summary>
/// <remarks>
/// <para>The device (<c>tmtun&lt;random&gt;</c>, IFF_TUN | IFF_NO_PI: each read or write is one bare IP
/// packet) is created in the root namespace and moved into a test's <see cref="NetNamespace"/>; the
/// file descriptor keeps working after the move. Inside the namespace it is point-to-point:
/// <c>ip addr add KERNEL peer STACK</c>, the given MTU, IPv6 disabled (so the kernel sends no router
/// solicitations; any IPv6 packet that still arrives is counted in <see cref="Ipv6PacketsRead"/> and
/// delivered, and the stack counts it as unsupported).</para>
/// <para>Writes may come from any number of threads at once: write(2) on a TUN descriptor is atomic
/// per packet. A failed write is counted (<see cref="WriteErrors"/>), never thrown, since the stack
/// calls <see cref="SendPacket"/> from its receive path. After <see cref="Dispose"/>, packets sent are
/// counted in <see cref="WritesAfterDispose"/> and discarded.</para>
/// <para><see cref="ReadLossPercent"/> and <see cref="WriteLossPercent"/> discard packets at random
/// inside the link. Unlike nftables rules in the namespace (<see cref="NetNamespace.SetRandomLossAsync"/>),
/// a packet the kernel sent and this link discards is lost on the wire as far as the kernel can
/// tell; an nftables drop on the kernel's own output is reported back to the sender instead (TCP
/// keeps the segment queued and sends it again later, ping sends the request again).</para>
/// <para>Dispose wakes the receive thread through an eventfd, joins it, and closes the descriptor,
/// which deletes the device. It is safe to call twice.</para>
/// </remarks>
internal sealed partial class TunLink : IPacketOutput, IDisposable
{
    /// <summary>Largest packet read from the device: a whole IPv4/IPv6 datagram.</summary>
    private const int MaxPacket = 65536;

    private const int ORdWr = 0x2;
    private const int ONonBlock = 0x800;
    private const int OCloExec = 0x80000;
    private const int EfdCloExec = 0x80000;
    private const int EfdNonBlock = 0x800;
    private const nuint TunSetIff = 0x400454ca; // _IOW('T', 202, int)
    private const short IffTun = 0x0001;
    private const short IffNoPi = 0x1000;
    private const short PollIn = 0x001;
    private const short PollErr = 0x008;
    private const short PollHup = 0x010;
    private const short PollNval = 0x020;
    private const int EIntr = 4;
    private const int EAgain = 11;
    private const int IfReqSize = 40;
    private const int IfNameSize = 16;

    private static readonly TimeSpan JoinLimit = TimeSpan.FromSeconds(10);

    private readonly SafeFileHandle _tun;
    private readonly SafeFileHandle _wake;
    private readonly PacketBufferPool _pool;
    private Thread? _thread;
    private Action<PacketBuffer>? _deliver;
    private int _disposed;
    private long _packetsRead;
    private long _bytesRead;
    private long _ipv6PacketsRead;
    private long _readErrors;
    private long _readDropped;
    private long _packetsWritten;
    private long _bytesWritten;
    private long _writeErrors;
    private long _writeDropped;
    private long _writesAfterDispose;
    private int _lastWriteErrno;
    private int _readLossPercent;
    private int _writeLossPercent;
    private Exception? _deliveryError;

    private TunLink(SafeFileHandle tun, SafeFileHandle wake, string deviceName, PacketBufferPool pool)
    {
        _tun = tun;
        _wake = wake;
        _pool = pool;
        DeviceName = deviceName;
    }

    /// <summary>The device's name (the same in the root namespace, where it was made, and in <see cref="Namespace"/>).</summary>
    public string DeviceName { get; }

    /// <summary>The namespace the device lives in.</summary>
    public NetNamespace Namespace { get; private set; } = null!;

    /// <summary>The kernel's address on the device.</summary>
    public IPAddress KernelAddress { get; private set; } = IPAddress.None;

    /// <summary>The address the kernel routes through the device (the stack's).</summary>
    public IPAddress StackAddress { get; private set; } = IPAddress.None;

    /// <summary>The device's MTU.</summary>
    public int Mtu { get; private set; }

    /// <summary>The pool received packets are rented from.</summary>
    public PacketBufferPool Pool => _pool;

    /// <summary>Packets read from the device (what the kernel sent), including those discarded by <see cref="ReadLossPercent"/>.</summary>
    public long PacketsRead => Interlocked.Read(ref _packetsRead);

    /// <summary>Bytes of <see cref="PacketsRead"/>.</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead);

    /// <summary>Of <see cref="PacketsRead"/>, those with IP version 6.</summary>
    public long Ipv6PacketsRead => Interlocked.Read(ref _ipv6PacketsRead);

    /// <summary>read(2) calls that failed with something other than EAGAIN/EINTR.</summary>
    public long ReadErrors => Interlocked.Read(ref _readErrors);

    /// <summary>Packets read and then discarded by <see cref="ReadLossPercent"/>.</summary>
    public long ReadDropped => Interlocked.Read(ref _readDropped);

    /// <summary>Packets written to the device in full (what the kernel received).</summary>
    public long PacketsWritten => Interlocked.Read(ref _packetsWritten);

    /// <summary>Bytes of <see cref="PacketsWritten"/>.</summary>
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    /// <summary>Writes that failed or were short (see <see cref="LastWriteErrno"/>).</summary>
    public long WriteErrors => Interlocked.Read(ref _writeErrors);

    /// <summary>Packets handed to <see cref="SendPacket"/> and discarded by <see cref="WriteLossPercent"/>.</summary>
    public long WriteDropped => Interlocked.Read(ref _writeDropped);

    /// <summary>Packets handed to <see cref="SendPacket"/> after the descriptor was closed.</summary>
    public long WritesAfterDispose => Interlocked.Read(ref _writesAfterDispose);

    /// <summary>errno of the last failed write (0 for a short write or none).</summary>
    public int LastWriteErrno => Volatile.Read(ref _lastWriteErrno);

    /// <summary>The first exception the delivery delegate threw (the thread goes on), or null.</summary>
    public Exception? DeliveryError => Volatile.Read(ref _deliveryError);

    /// <summary>Percentage (0–100) of packets read from the device that are discarded before delivery.</summary>
    public int ReadLossPercent
    {
        get => Volatile.Read(ref _readLossPercent);
        set => Volatile.Write(ref _readLossPercent, CheckPercent(value));
    }

    /// <summary>Percentage (0–100) of packets given to <see cref="SendPacket"/> that are discarded instead of written.</summary>
    public int WriteLossPercent
    {
        get => Volatile.Read(ref _writeLossPercent);
        set => Volatile.Write(ref _writeLossPercent, CheckPercent(value));
    }

    /// <summary>
    /// Creates the device, moves it into <paramref name="ns"/> and configures it there as a
    /// point-to-point link from <paramref name="kernelAddress"/> to <paramref name="stackAddress"/>.
    /// Reading starts with <see cref="Start"/>; until then the kernel's packets wait in the device queue.
    /// </summary>
    public static async Task<TunLink> CreateAsync(NetNamespace ns, IPAddress kernelAddress, IPAddress stackAddress, int mtu = 1420, PacketBufferPool? pool = null)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentNullException.ThrowIfNull(kernelAddress);
        ArgumentNullException.ThrowIfNull(stackAddress);
        var link = Open($"tmtun{Random.Shared.Next(100000, 1000000)}", pool ?? new PacketBufferPool());
        try
        {
            link.Namespace = ns;
            link.KernelAddress = kernelAddress;
            link.StackAddress = stackAddress;
            link.Mtu = mtu;
            string dev = link.DeviceName;
            await ProcessRunner.CheckAsync("ip", "link", "set", dev, "netns", ns.Name);

            // No IPv6 on the link (no router solicitations); a kernel without IPv6 has no such file.
            await ns.ExecCheckAsync("sh", "-c", $"f=/proc/sys/net/ipv6/conf/{dev}/disable_ipv6; [ ! -e $f ] || echo 1 > $f");
            await ns.ExecCheckAsync("ip", "addr", "add", kernelAddress.ToString(), "peer", stackAddress.ToString(), "dev", dev);
            await ns.ExecCheckAsync("ip", "link", "set", dev, "mtu", mtu.ToString(), "up");
            return link;
        }
        catch
        {
            link.Dispose();
            throw;
        }
    }

    /// <summary>The IPv4 address as a host-order integer, as <see cref="NetStackOptions.Address"/> takes it.</summary>
    public static uint ToUInt32(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException("IPv4 only.", nameof(address));
        }

        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }

    /// <summary>Starts the receive thread, which hands every packet read to <paramref name="deliver"/> (which takes ownership).</summary>
    public void Start(Action<PacketBuffer> deliver)
    {
        ArgumentNullException.ThrowIfNull(deliver);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Interlocked.CompareExchange(ref _deliver, deliver, null) is not null)
        {
            throw new InvalidOperationException("The link is already started.");
        }

        _thread = new Thread(ReceiveLoop) { IsBackground = true, Name = $"TunLink {DeviceName}" };
        _thread.Start();
    }

    /// <summary>Writes one IP packet to the device and returns the buffer to its pool. Never throws.</summary>
    public unsafe void SendPacket(PacketBuffer ipPacket)
    {
        ArgumentNullException.ThrowIfNull(ipPacket);
        try
        {
            int loss = Volatile.Read(ref _writeLossPercent);
            if (loss > 0 && Random.Shared.Next(100) < loss)
            {
                Interlocked.Increment(ref _writeDropped);
                return;
            }

            nint written;
            int errno = 0;
            fixed (byte* data = ipPacket.Span)
            {
                written = Write(_tun, data, (nuint)ipPacket.Length);
                if (written < 0)
                {
                    errno = Marshal.GetLastPInvokeError();
                }
            }

            if (written == ipPacket.Length)
            {
                Interlocked.Increment(ref _packetsWritten);
                Interlocked.Add(ref _bytesWritten, written);
            }
            else
            {
                Volatile.Write(ref _lastWriteErrno, errno);
                Interlocked.Increment(ref _writeErrors);
            }
        }
        catch (ObjectDisposedException)
        {
            // The descriptor is closed (SafeHandle refuses it): the link is gone, like a cable pulled out.
            Interlocked.Increment(ref _writesAfterDispose);
        }
        finally
        {
            ipPacket.Return();
        }
    }

    /// <summary>A one-line summary of the counters, for failure messages.</summary>
    public override string ToString() =>
        $"{DeviceName}: read {PacketsRead} packets/{BytesRead} bytes (IPv6 {Ipv6PacketsRead}, dropped {ReadDropped}, errors {ReadErrors}), "
        + $"written {PacketsWritten}/{BytesWritten} bytes (dropped {WriteDropped}, errors {WriteErrors}, last errno {LastWriteErrno}, after dispose {WritesAfterDispose})"
        + (DeliveryError is { } e ? $", delivery threw {e.GetType().Name}: {e.Message}" : string.Empty);

    /// <summary>Stops the receive thread, closes the descriptor (the kernel deletes the device). Safe to call twice.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        bool stopped = true;
        if (_thread is { } thread)
        {
            Wake();
            stopped = thread.Join(JoinLimit);
        }

        // If a write is still in progress on another thread, SafeHandle closes when it returns.
        _tun.Dispose();
        _wake.Dispose();
        if (!stopped)
        {
            throw new InvalidOperationException($"The receive thread of {DeviceName} did not stop within {JoinLimit}.");
        }
    }

    private static unsafe TunLink Open(string name, PacketBufferPool pool)
    {
        int fd = OpenFile("/dev/net/tun", ORdWr | ONonBlock | OCloExec);
        if (fd < 0)
        {
            throw new InvalidOperationException($"open /dev/net/tun failed: errno {Marshal.GetLastPInvokeError()}");
        }

        var tun = new SafeFileHandle(fd, ownsHandle: true);
        byte* ifreq = stackalloc byte[IfReqSize];
        new Span<byte>(ifreq, IfReqSize).Clear();
        Encoding.ASCII.GetBytes(name, new Span<byte>(ifreq, IfNameSize - 1));
        *(short*)(ifreq + IfNameSize) = IffTun | IffNoPi;
        if (Ioctl(tun, TunSetIff, ifreq) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            tun.Dispose();
            throw new InvalidOperationException($"ioctl TUNSETIFF {name} failed: errno {errno}");
        }

        string actual = Encoding.ASCII.GetString(new ReadOnlySpan<byte>(ifreq, IfNameSize)).TrimEnd('\0');
        int wakeFd = EventFd(0, EfdCloExec | EfdNonBlock);
        if (wakeFd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            tun.Dispose();
            throw new InvalidOperationException($"eventfd failed: errno {errno}");
        }

        return new TunLink(tun, new SafeFileHandle(wakeFd, ownsHandle: true), actual, pool);
    }

    private static int CheckPercent(int value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 100);
        return value;
    }

    private unsafe void Wake()
    {
        ulong one = 1;
        _ = Write(_wake, (byte*)&one, sizeof(ulong));
    }

    private unsafe void ReceiveLoop()
    {
        // Hold both descriptors open for the thread's lifetime, so their numbers stay ours.
        bool tunAdded = false;
        bool wakeAdded = false;
        _tun.DangerousAddRef(ref tunAdded);
        _wake.DangerousAddRef(ref wakeAdded);
        PacketBuffer? spare = null;
        try
        {
            var fds = stackalloc PollFd[2];
            fds[0] = new PollFd { Fd = (int)_tun.DangerousGetHandle(), Events = PollIn };
            fds[1] = new PollFd { Fd = (int)_wake.DangerousGetHandle(), Events = PollIn };
            while (Volatile.Read(ref _disposed) == 0)
            {
                fds[0].Revents = 0;
                fds[1].Revents = 0;
                if (Poll(fds, 2, -1) < 0)
                {
                    if (Marshal.GetLastPInvokeError() == EIntr)
                    {
                        continue;
                    }

                    Interlocked.Increment(ref _readErrors);
                    return;
                }

                if (fds[1].Revents != 0)
                {
                    return;
                }

                if ((fds[0].Revents & (PollErr | PollHup | PollNval)) != 0)
                {
                    // The device went away under us (its namespace was deleted first).
                    Interlocked.Increment(ref _readErrors);
                    return;
                }

                // Drain what is queued, but look at the stop flag between packets.
                while (Volatile.Read(ref _disposed) == 0)
                {
                    spare ??= _pool.Rent();
                    nint n;
                    fixed (byte* data = spare.Available[..MaxPacket])
                    {
                        n = Read(fds[0].Fd, data, MaxPacket);
                    }

                    if (n <= 0)
                    {
                        int errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
                        if (errno != EAgain && errno != EIntr)
                        {
                            Interlocked.Increment(ref _readErrors);
                        }

                        break;
                    }

                    var packet = spare;
                    spare = null;
                    packet.Length = (int)n;
                    Interlocked.Increment(ref _packetsRead);
                    Interlocked.Add(ref _bytesRead, n);
                    if (packet.Span[0] >> 4 == 6)
                    {
                        Interlocked.Increment(ref _ipv6PacketsRead);
                    }

                    int loss = Volatile.Read(ref _readLossPercent);
                    if (loss > 0 && Random.Shared.Next(100) < loss)
                    {
                        Interlocked.Increment(ref _readDropped);
                        packet.Return();
                        continue;
                    }

                    Deliver(packet);
                }
            }
        }
        finally
        {
            spare?.Return();
            if (wakeAdded)
            {
                _wake.DangerousRelease();
            }

            if (tunAdded)
            {
                _tun.DangerousRelease();
            }
        }
    }

    private void Deliver(PacketBuffer packet)
    {
        try
        {
            _deliver!(packet);
        }
#pragma warning disable CA1031 // The receive thread must survive a throwing delegate; the test sees DeliveryError.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Interlocked.CompareExchange(ref _deliveryError, ex, null);
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenFile(string path, int flags);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static unsafe partial int Ioctl(SafeHandle fd, nuint request, byte* argument);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFd(uint initialValue, int flags);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int Poll(PollFd* fds, nuint count, int timeoutMilliseconds);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint Write(SafeHandle fd, byte* buffer, nuint count);
}
