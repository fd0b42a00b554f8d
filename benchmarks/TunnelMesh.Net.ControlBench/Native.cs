using System.Diagnostics;
using System.Runtime.InteropServices;

namespace TunnelMesh.Net.ControlBench;

/// <summary>This process's CPU time from getrusage(RUSAGE_SELF) (Process times where there is none).</summary>
internal static partial class Rusage
{
    public static unsafe (double User, double System) Read()
    {
        if (OperatingSystem.IsLinux())
        {
            // struct rusage on 64-bit Linux: two timevals (4 longs), then 14 longs.
            long* usage = stackalloc long[18];
            if (GetRusage(0, usage) == 0)
            {
                return (usage[0] + (usage[1] / 1e6), usage[2] + (usage[3] / 1e6));
            }
        }

        using var self = Process.GetCurrentProcess();
        return (self.UserProcessorTime.TotalSeconds, self.PrivilegedProcessorTime.TotalSeconds);
    }

    [LibraryImport("libc", EntryPoint = "getrusage", SetLastError = true)]
    private static unsafe partial int GetRusage(int who, long* usage);
}

/// <summary>The open-file limit (RLIMIT_NOFILE): 10,000 map streams need 10,000 descriptors in each process.</summary>
internal static partial class FileLimit
{
    private const int RlimitNofile = 7;

    /// <summary>Raises the soft limit to the hard one; returns (soft, hard) afterwards, or (-1, -1) where unknown.</summary>
    public static unsafe (long Soft, long Hard) RaiseToHard()
    {
        if (!OperatingSystem.IsLinux())
        {
            return (-1, -1);
        }

        long* limit = stackalloc long[2];
        if (GetRlimit(RlimitNofile, limit) != 0)
        {
            return (-1, -1);
        }

        if (limit[0] < limit[1])
        {
            limit[0] = limit[1];
            _ = SetRlimit(RlimitNofile, limit);
            _ = GetRlimit(RlimitNofile, limit);
        }

        return (limit[0], limit[1]);
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static unsafe partial int GetRlimit(int resource, long* limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static unsafe partial int SetRlimit(int resource, long* limit);
}

/// <summary>The 1-minute load average, or -1.</summary>
internal static class LoadAverage
{
    public static double Read()
    {
        try
        {
            string text = File.ReadAllText("/proc/loadavg");
            return double.Parse(text.AsSpan(0, text.IndexOf(' ', StringComparison.Ordinal)), System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or FormatException or ArgumentOutOfRangeException)
        {
            return -1;
        }
    }
}
