using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.ControlBench;

/// <summary>
/// The child process: a coordinator (AddMeshCoordinator/MapMeshCoordinator) on Kestrel at
/// 127.0.0.1:0 with the SQLite store, plus GET /bench/stats (this process's CPU, RSS and managed
/// heap). Says "READY port" on stdout and stops when its stdin closes.
/// </summary>
internal static class CoordinatorRole
{
    /// <summary>The environment variable that carries the admin credential (never the command line).</summary>
    public const string AdminVariable = "TM_CONTROLBENCH_ADMIN";

    public static async Task<int> RunAsync(BenchOptions options, CancellationToken ct)
    {
        FileLimit.RaiseToHard();
        string admin = Environment.GetEnvironmentVariable(AdminVariable)
            ?? throw new UsageException($"the coordinator role needs {AdminVariable}");
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(c => c.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddMeshCoordinator(o =>
        {
            o.AdminCredential = admin;
            o.SqlitePath = options.Database!;
            // Every simulated node joins from 127.0.0.1: the per-IP join limit would stop the run at 60 a minute.
            o.JoinPermitsPerMinute = 10_000_000;
            o.MapKeepAliveInterval = TimeSpan.FromSeconds(options.KeepAliveSeconds);
        });
        await using WebApplication app = builder.Build();
        app.MapMeshCoordinator();
        app.MapGet("/bench/stats", (HttpContext c) =>
        {
            if (c.Request.Query.ContainsKey("gc"))
            {
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                GC.WaitForPendingFinalizers();
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            }

            return Results.Json(CoordinatorStats.Take(), Json.Options);
        });
        await app.StartAsync(ct);
        string url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        Console.Out.WriteLine("READY " + new Uri(url).Port);
        Console.Out.Flush();

        // Stop when the parent closes stdin (or dies).
        await Task.Run(
            async () =>
            {
                using Stream stdin = Console.OpenStandardInput();
                byte[] buffer = new byte[256];
                while (await stdin.ReadAsync(buffer, ct) > 0)
                {
                }
            },
            ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await app.StopAsync(stopping.Token);
        return 0;
    }
}

/// <summary>What the coordinator process uses (all of it: Kestrel, the coordinator, the runtime).</summary>
internal sealed record CoordinatorStats(
    double UserSeconds,
    double SystemSeconds,
    long RssBytes,
    long PeakRssBytes,
    long ManagedHeapBytes,
    long GcCommittedBytes,
    long AllocatedBytes,
    int Gen0,
    int Gen1,
    int Gen2,
    int Threads,
    int OpenFiles)
{
    public double CpuSeconds => UserSeconds + SystemSeconds;

    public static CoordinatorStats Take()
    {
        var (user, system) = Rusage.Read();
        var (rss, peak) = ProcStatus.Read();
        GCMemoryInfo gc = GC.GetGCMemoryInfo();
        int fds = 0;
        try
        {
            fds = Directory.GetFileSystemEntries("/proc/self/fd").Length;
        }
        catch (IOException)
        {
        }

        return new CoordinatorStats(
            user, system, rss, peak, GC.GetTotalMemory(false), gc.TotalCommittedBytes,
            GC.GetTotalAllocatedBytes(), GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2),
            System.Diagnostics.Process.GetCurrentProcess().Threads.Count, fds);
    }
}

/// <summary>VmRSS and VmHWM of this process, in bytes (/proc/self/status; 0 where there is none).</summary>
internal static class ProcStatus
{
    public static (long Rss, long Peak) Read()
    {
        long rss = 0, peak = 0;
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    rss = Kilobytes(line) * 1024;
                }
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    peak = Kilobytes(line) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }

        return (rss, peak);
    }

    private static long Kilobytes(string line)
    {
        string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts.Length >= 2 && long.TryParse(parts[1], out long kb) ? kb : 0;
    }
}
