using System.Diagnostics;
using System.Runtime.InteropServices;

namespace TunnelMesh.Net.EndToEnd;

/// <summary>
/// What this process has used so far: CPU time (getrusage, microsecond resolution), bytes
/// allocated by all threads, GC counts, context switches, and the datagram and segment counters
/// of the network namespace it runs in (/proc/self/net/snmp). Differences of two samples are what
/// a test window cost.
/// </summary>
internal readonly record struct ProcessSample(
    long Timestamp,
    double UserSeconds,
    double SystemSeconds,
    long VoluntarySwitches,
    long InvoluntarySwitches,
    long AllocatedBytes,
    int Gen0,
    int Gen1,
    int Gen2,
    long UdpIn,
    long UdpOut,
    long TcpInSegs,
    long TcpOutSegs,
    long UdpBufferErrors,
    long TcpRetransSegs,
    long PoolBuffers)
{
    public static ProcessSample Take()
    {
        var (udpIn, udpOut, tcpIn, tcpOut, udpBufferErrors, tcpRetrans) = NetCounters.Read();
        var (user, system, nvcsw, nivcsw) = Rusage.Read();
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        return new ProcessSample(
            Stopwatch.GetTimestamp(), user, system, nvcsw, nivcsw, allocated,
            GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2),
            udpIn, udpOut, tcpIn, tcpOut, udpBufferErrors, tcpRetrans, PoolCounter.Read());
    }

    public static WindowCost Between(ProcessSample a, ProcessSample b) => new(
        Seconds: Stopwatch.GetElapsedTime(a.Timestamp, b.Timestamp).TotalSeconds,
        UserSeconds: b.UserSeconds - a.UserSeconds,
        SystemSeconds: b.SystemSeconds - a.SystemSeconds,
        VoluntarySwitches: b.VoluntarySwitches - a.VoluntarySwitches,
        InvoluntarySwitches: b.InvoluntarySwitches - a.InvoluntarySwitches,
        AllocatedBytes: b.AllocatedBytes - a.AllocatedBytes,
        Gen0: b.Gen0 - a.Gen0,
        Gen1: b.Gen1 - a.Gen1,
        Gen2: b.Gen2 - a.Gen2,
        UdpIn: b.UdpIn - a.UdpIn,
        UdpOut: b.UdpOut - a.UdpOut,
        TcpInSegs: b.TcpInSegs - a.TcpInSegs,
        TcpOutSegs: b.TcpOutSegs - a.TcpOutSegs,
        UdpBufferErrors: b.UdpBufferErrors - a.UdpBufferErrors,
        TcpRetransSegs: b.TcpRetransSegs - a.TcpRetransSegs,
        PoolBuffers: b.PoolBuffers - a.PoolBuffers);
}

/// <summary>The cost of one window between two <see cref="ProcessSample"/>s.</summary>
/// <remarks><see cref="PoolBuffers"/> is how many packet buffers the nodes' pools allocated in the window.</remarks>
internal sealed record WindowCost(
    double Seconds,
    double UserSeconds,
    double SystemSeconds,
    long VoluntarySwitches,
    long InvoluntarySwitches,
    long AllocatedBytes,
    int Gen0,
    int Gen1,
    int Gen2,
    long UdpIn,
    long UdpOut,
    long TcpInSegs,
    long TcpOutSegs,
    long UdpBufferErrors,
    long TcpRetransSegs,
    long PoolBuffers)
{
    public double CpuSeconds => UserSeconds + SystemSeconds;
}

internal static partial class Rusage
{
    private static bool s_unavailable;

    public static unsafe (double User, double System, long Voluntary, long Involuntary) Read()
    {
        if (!s_unavailable && OperatingSystem.IsLinux())
        {
            // struct rusage on 64-bit Linux: two timevals (4 longs) and 14 longs.
            long* usage = stackalloc long[18];
            try
            {
                if (GetRusage(0 /* RUSAGE_SELF */, usage) == 0)
                {
                    return (usage[0] + (usage[1] / 1e6), usage[2] + (usage[3] / 1e6), usage[16], usage[17]);
                }
            }
            catch (DllNotFoundException)
            {
                s_unavailable = true;
            }
            catch (EntryPointNotFoundException)
            {
                s_unavailable = true;
            }
        }

        using var self = Process.GetCurrentProcess();
        return (self.UserProcessorTime.TotalSeconds, self.PrivilegedProcessorTime.TotalSeconds, 0, 0);
    }

    [LibraryImport("libc", EntryPoint = "getrusage", SetLastError = true)]
    private static unsafe partial int GetRusage(int who, long* usage);
}

/// <summary>
/// UDP datagrams and TCP segments in and out, UDP datagrams dropped for want of socket buffer
/// (RcvbufErrors + SndbufErrors) and kernel TCP retransmissions, for the whole network namespace of this process.
/// </summary>
internal static class NetCounters
{
    public static (long UdpIn, long UdpOut, long TcpIn, long TcpOut, long UdpBufferErrors, long TcpRetrans) Read()
    {
        long udpIn = 0, udpOut = 0, tcpIn = 0, tcpOut = 0, udpBuffer = 0, tcpRetrans = 0;
        try
        {
            string[] lines = File.ReadAllLines("/proc/self/net/snmp");
            for (int i = 0; i + 1 < lines.Length; i++)
            {
                if (lines[i].StartsWith("Udp: ", StringComparison.Ordinal) && lines[i + 1].StartsWith("Udp: ", StringComparison.Ordinal))
                {
                    udpIn = Field(lines[i], lines[i + 1], "InDatagrams");
                    udpOut = Field(lines[i], lines[i + 1], "OutDatagrams");
                    udpBuffer = Field(lines[i], lines[i + 1], "RcvbufErrors") + Field(lines[i], lines[i + 1], "SndbufErrors");
                    i++;
                }
                else if (lines[i].StartsWith("Tcp: ", StringComparison.Ordinal) && lines[i + 1].StartsWith("Tcp: ", StringComparison.Ordinal))
                {
                    tcpIn = Field(lines[i], lines[i + 1], "InSegs");
                    tcpOut = Field(lines[i], lines[i + 1], "OutSegs");
                    tcpRetrans = Field(lines[i], lines[i + 1], "RetransSegs");
                    i++;
                }
            }
        }
        catch (IOException)
        {
            // Not Linux, or /proc not mounted: the packet counts stay 0 and the report says so.
        }
        catch (UnauthorizedAccessException)
        {
        }

        return (udpIn, udpOut, tcpIn, tcpOut, udpBuffer, tcpRetrans);
    }

    private static long Field(string header, string values, string name)
    {
        string[] names = header.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string[] numbers = values.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        int index = Array.IndexOf(names, name);
        return index > 0 && index < numbers.Length && long.TryParse(numbers[index], out long v) ? v : 0;
    }
}
