using System.Net;
using Microsoft.Extensions.DependencyInjection;

namespace TunnelMesh.Net.Tests.Hosting;

/// <summary>Runs alone (no other test class in parallel), so the process's file descriptors and threads can be counted.</summary>
[CollectionDefinition(nameof(HostLifetimeCollection), DisableParallelization = true)]
public sealed class HostLifetimeCollection;

/// <summary>A host that starts and stops mesh nodes leaves no thread, socket or file handle behind.</summary>
[Collection(nameof(HostLifetimeCollection))]
public sealed class HostLifetimeTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    private static int OpenFileDescriptors() => Directory.GetFiles("/proc/self/fd").Length;

    /// <summary>Threads whose name starts like the node's UDP receive thread ("TunnelMesh UDP :port", 15 characters kept by Linux).</summary>
    private static int NodeThreads() => Directory.GetDirectories("/proc/self/task")
        .Count(t => File.Exists(Path.Combine(t, "comm")) && SafeRead(Path.Combine(t, "comm")).StartsWith("TunnelMesh UDP", StringComparison.Ordinal));

    private static string SafeRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return ""; // the thread ended while we looked
        }
    }

    /// <summary>The count after a full GC, so sockets other tests left to finalizers are closed first.</summary>
    private static int SettledFileDescriptors()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return OpenFileDescriptors();
    }

    private static async Task<(int FdsBefore, int FdsRunning, int ThreadsRunning)> CycleAsync()
    {
        int before = SettledFileDescriptors();
        var builder = AddMeshNodeTests.Builder();
        AddMeshNodeTests.AddPair(builder.Services, NodePrivateKey.Generate(), NodePrivateKey.Generate());
        using var host = builder.Build();
        await host.StartAsync().WaitAsync(Limit);
        var a = host.Services.GetRequiredKeyedService<MeshNode>("a");
        var b = host.Services.GetRequiredKeyedService<MeshNode>("b");
        await b.PingAsync(IPAddress.Parse("100.64.0.1"), Limit);

        // Also a TCP connection, open while the host stops.
        await using var listener = await a.ListenAsync(7000);
        var accept = listener.AcceptAsync().AsTask();
        await using var client = await b.DialAsync(IPAddress.Parse("100.64.0.1"), 7000).WaitAsync(Limit);
        await using var server = await accept.WaitAsync(Limit);
        await client.WriteAsync(new byte[1000]);
        int fds = OpenFileDescriptors();
        int threads = NodeThreads();
        await host.StopAsync().WaitAsync(Limit);
        return (before, fds, threads);
    }

    [Fact]
    public async Task Starting_and_stopping_the_host_leaves_no_thread_socket_or_file_handle()
    {
        if (!Directory.Exists("/proc/self/fd"))
        {
            return; // not Linux: nothing to count (CI and development here are Linux)
        }

        await CycleAsync(); // warm-up: one-time runtime resources (socket engine, timers) exist from now on
        int baselineFds = SettledFileDescriptors();
        int baselineThreads = NodeThreads();
        var running = default((int FdsBefore, int FdsRunning, int ThreadsRunning));
        for (int i = 0; i < 3; i++)
        {
            running = await CycleAsync();
        }

        Assert.True(running.FdsRunning > running.FdsBefore, $"the running nodes' sockets should show in /proc/self/fd ({running.FdsBefore} before the start, {running.FdsRunning} running)");
        Assert.Equal(baselineThreads + 2, running.ThreadsRunning); // one UDP receive thread per node

        // Sockets close as their last operations complete: wait (bounded) for the count to come back.
        var deadline = DateTime.UtcNow + Limit;
        while (SettledFileDescriptors() > baselineFds || NodeThreads() > baselineThreads)
        {
            Assert.True(DateTime.UtcNow < deadline, $"after 3 start/stop cycles: {OpenFileDescriptors()} file descriptors (baseline {baselineFds}), {NodeThreads()} node threads (baseline {baselineThreads})");
            await Task.Delay(20);
        }
    }
}
