using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TunnelMesh.Net.Transport;

/// <summary>
/// Linux batched datagram calls (<c>recvmmsg</c>/<c>sendmmsg</c>) and the C structures they take.
/// The structures use <see cref="nint"/>/<see cref="nuint"/> for pointers and <c>size_t</c>, so
/// sequential layout matches the C layout on 32- and 64-bit Linux alike.
/// </summary>
internal static unsafe partial class LinuxSocketInterop
{
    /// <summary>recvmmsg: block for the first datagram only, then take what is already queued.</summary>
    public const int MsgWaitForOne = 0x10000;

    /// <summary>msg_flags: the datagram was longer than the buffer.</summary>
    public const int MsgTrunc = 0x20;

    public const ushort AfInet = 2;
    public const ushort AfInet6 = 10;

    public const int SolUdp = 17;
    public const int UdpSegment = 103;
    public const int UdpGro = 104;
    public const int EIo = 5;
    public const int EIntr = 4;
    public const int EBadF = 9;
    public const int EAgain = 11;
    public const int EFault = 14;
    public const int EInval = 22;
    public const int ENotSock = 88;
    public const int EConnRefused = 111;

    [LibraryImport("libc", EntryPoint = "recvmmsg", SetLastError = true)]
    public static partial int RecvMmsg(int socket, MMsgHdr* messages, uint count, int flags, nint timeout);

    [LibraryImport("libc", EntryPoint = "sendmmsg", SetLastError = true)]
    public static partial int SendMmsg(int socket, MMsgHdr* messages, uint count, int flags);

    /// <summary>struct iovec.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct IoVec
    {
        public nint Base;
        public nuint Length;
    }

    /// <summary>struct msghdr.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct MsgHdr
    {
        public nint Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public nint Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>struct mmsghdr.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    /// <summary>struct sockaddr_in6 (28 bytes). Port, flow info and address are in network order.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SockAddrIn6
    {
        public ushort Family;
        public ushort Port;
        public uint FlowInfo;
        public fixed byte Address[16];
        public uint ScopeId;
    }

    /// <summary>struct sockaddr_in (16 bytes). Port and address are in network order.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SockAddrIn
    {
        public ushort Family;
        public ushort Port;
        public uint Address;
        public ulong Zero;
    }
}

/// <summary>
/// Native memory for one batch of <c>mmsghdr</c>s, each with one <c>iovec</c> and a socket-address
/// slot, linked once at construction. Not thread-safe: one per receive thread, one per send lock.
/// </summary>
internal sealed unsafe class NativeMessageBatch : IDisposable
{
    /// <summary>Bytes per socket-address slot (sockaddr_in6 is 28).</summary>
    public const int NameSize = 32;

    /// <summary>Bytes of control data per message: CMSG_SPACE(sizeof(uint16_t)) for UDP_SEGMENT.</summary>
    public const int ControlSize = 24;

    private LinuxSocketInterop.MMsgHdr* _headers;
    private LinuxSocketInterop.IoVec* _iovecs;
    private byte* _names;
    private byte* _controls;

    /// <summary>Allocates and links <paramref name="capacity"/> headers.</summary>
    public NativeMessageBatch(int capacity)
    {
        Capacity = capacity;
        _headers = (LinuxSocketInterop.MMsgHdr*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(LinuxSocketInterop.MMsgHdr));
        _iovecs = (LinuxSocketInterop.IoVec*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(LinuxSocketInterop.IoVec));
        _names = (byte*)NativeMemory.AllocZeroed((nuint)capacity, NameSize);
        _controls = (byte*)NativeMemory.AllocZeroed((nuint)capacity, ControlSize);
        for (int i = 0; i < capacity; i++)
        {
            _headers[i].Header.Name = (nint)(_names + (i * NameSize));
            _headers[i].Header.Iov = _iovecs + i;
            _headers[i].Header.IovLength = 1;
        }
    }

    /// <summary>How many headers there are.</summary>
    public int Capacity { get; }

    /// <summary>The first header (for the native call).</summary>
    public LinuxSocketInterop.MMsgHdr* Headers => _headers;

    /// <summary>Points message <paramref name="index"/> at <c>array[offset..offset+length]</c> (the array must be pinned).</summary>
    public void SetBuffer(int index, byte[] array, int offset, int length)
    {
        _iovecs[index].Base = (nint)Unsafe.AsPointer(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(array), offset));
        _iovecs[index].Length = (nuint)length;
    }

    /// <summary>
    /// Makes message <paramref name="index"/> one UDP GSO send (Linux 4.18+): the
    /// <paramref name="count"/> iovecs from <paramref name="firstIov"/> (set with
    /// <see cref="SetBuffer"/>) go out as separate datagrams of <paramref name="segmentSize"/>
    /// bytes each, the last possibly shorter. With a count of one it is a plain datagram.
    /// </summary>
    public void SetSegmented(int index, int firstIov, int count, int segmentSize)
    {
        ref var header = ref _headers[index].Header;
        header.Iov = _iovecs + firstIov;
        header.IovLength = (nuint)count;
        if (count == 1)
        {
            header.Control = 0;
            header.ControlLength = 0;
            return;
        }

        // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then the uint16_t gso_size.
        byte* control = _controls + (index * ControlSize);
        *(nuint*)control = (nuint)(sizeof(nuint) + 8 + sizeof(ushort));
        *(int*)(control + sizeof(nuint)) = LinuxSocketInterop.SolUdp;
        *(int*)(control + sizeof(nuint) + 4) = LinuxSocketInterop.UdpSegment;
        *(ushort*)(control + sizeof(nuint) + 8) = (ushort)segmentSize;
        header.Control = (nint)control;
        header.ControlLength = ControlSize;
    }

    /// <summary>Prepares message <paramref name="index"/> for receiving (full name and control slots, flags clear).</summary>
    public void PrepareReceive(int index)
    {
        _headers[index].Header.NameLength = NameSize;
        _headers[index].Header.Control = (nint)(_controls + (index * ControlSize));
        _headers[index].Header.ControlLength = ControlSize;
        _headers[index].Header.Flags = 0;
        _headers[index].Length = 0;
    }

    /// <summary>
    /// The UDP GRO segment size of received message <paramref name="index"/> (a control message
    /// of level SOL_UDP, type UDP_GRO): the message holds several datagrams of that size, the
    /// last possibly shorter. Zero when the message is one datagram.
    /// </summary>
    public int ReadSegmentSize(int index)
    {
        ref var header = ref _headers[index].Header;
        if (header.Control == 0 || header.ControlLength < (nuint)(sizeof(nuint) + 8 + sizeof(int)))
        {
            return 0;
        }

        byte* control = (byte*)header.Control;
        if (*(int*)(control + sizeof(nuint)) != LinuxSocketInterop.SolUdp || *(int*)(control + sizeof(nuint) + 4) != LinuxSocketInterop.UdpGro)
        {
            return 0;
        }

        return *(int*)(control + sizeof(nuint) + 8);
    }

    /// <summary>Bytes received into (or length to send from) message <paramref name="index"/>.</summary>
    public int MessageLength(int index) => (int)_headers[index].Length;

    /// <summary>The iovec length of message <paramref name="index"/>.</summary>
    public int BufferLength(int index) => (int)_iovecs[index].Length;

    /// <summary>msg_flags of message <paramref name="index"/> after a receive.</summary>
    public int MessageFlags(int index) => _headers[index].Header.Flags;

    /// <summary>Reads the source address of received message <paramref name="index"/>.</summary>
    public bool TryReadSource(int index, out Endpoint endpoint)
    {
        uint nameLength = _headers[index].Header.NameLength;
        var name = new ReadOnlySpan<byte>(_names + (index * NameSize), NameSize);
        ushort family = MemoryMarshal.Read<ushort>(name);
        ushort port = BinaryPrimitives.ReadUInt16BigEndian(name[2..]);
        if (family == LinuxSocketInterop.AfInet6 && nameLength >= 24)
        {
            endpoint = Endpoint.FromBytes(name.Slice(8, 16), port);
            return true;
        }

        if (family == LinuxSocketInterop.AfInet && nameLength >= 8)
        {
            endpoint = Endpoint.FromIPv4(BinaryPrimitives.ReadUInt32BigEndian(name[4..]), port);
            return true;
        }

        endpoint = default;
        return false;
    }

    /// <summary>
    /// Writes the destination of message <paramref name="index"/> for a socket of the given family.
    /// False when an IPv4 socket is asked to reach an IPv6 address.
    /// </summary>
    public bool TryWriteDestination(int index, Endpoint endpoint, bool ipv6Socket)
    {
        var name = new Span<byte>(_names + (index * NameSize), NameSize);
        if (ipv6Socket)
        {
            MemoryMarshal.Write(name, LinuxSocketInterop.AfInet6);
            BinaryPrimitives.WriteUInt16BigEndian(name[2..], endpoint.Port);
            name.Slice(4, 4).Clear();
            BinaryPrimitives.WriteUInt128BigEndian(name[8..], endpoint.Address);
            name.Slice(24, 4).Clear();
            _headers[index].Header.NameLength = (uint)sizeof(LinuxSocketInterop.SockAddrIn6);
            return true;
        }

        if (!endpoint.IsIPv4)
        {
            return false;
        }

        MemoryMarshal.Write(name, LinuxSocketInterop.AfInet);
        BinaryPrimitives.WriteUInt16BigEndian(name[2..], endpoint.Port);
        BinaryPrimitives.WriteUInt32BigEndian(name[4..], (uint)endpoint.Address);
        name.Slice(8, 8).Clear();
        _headers[index].Header.NameLength = (uint)sizeof(LinuxSocketInterop.SockAddrIn);
        return true;
    }

    /// <summary>Frees the native memory (idempotent).</summary>
    public void Dispose()
    {
        NativeMemory.Free(_headers);
        NativeMemory.Free(_iovecs);
        NativeMemory.Free(_names);
        NativeMemory.Free(_controls);
        _controls = null;
        _headers = null;
        _iovecs = null;
        _names = null;
    }
}
