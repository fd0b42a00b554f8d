using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace TunnelMesh.Net.Tests.Support;

/// <summary>
/// A network namespace made by a test (`ip netns add`), deleted on dispose together with every
/// interface inside it. Traffic stays inside it or on loopback.
/// </summary>
public sealed partial class NetNamespace : IAsyncDisposable
{
    private NetNamespace(string name) => Name = name;

    public string Name { get; }

    public static async Task<NetNamespace> CreateAsync(string prefix = "tmt")
    {
        var name = $"{prefix}{Environment.ProcessId % 10000}x{Random.Shared.Next(100000)}";
        await ProcessRunner.CheckAsync("ip", "netns", "add", name);
        var ns = new NetNamespace(name);
        await ns.ExecCheckAsync("ip", "link", "set", "lo", "up");
        return ns;
    }

    public Task<ProcessRunner.Result> ExecAsync(string program, IEnumerable<string> args, TimeSpan? timeout = null) =>
        ProcessRunner.RunAsync("ip", new[] { "netns", "exec", Name, program }.Concat(args), timeout);

    public async Task<string> ExecCheckAsync(string program, params string[] args)
    {
        var r = await ExecAsync(program, args);
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"[{Name}] {program} {string.Join(' ', args)} exited {r.ExitCode}: {r.All}");
        }

        return r.Stdout;
    }

    /// <summary>Creates a socket that lives inside this namespace (setns on a short-lived thread).</summary>
    public Socket CreateSocket(AddressFamily family, SocketType type, ProtocolType protocol)
    {
        Socket? socket = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var ns = File.OpenHandle($"/run/netns/{Name}");
                if (SetNs((int)ns.DangerousGetHandle(), 0x40000000 /* CLONE_NEWNET */) != 0)
                {
                    throw new InvalidOperationException($"setns failed: errno {Marshal.GetLastPInvokeError()}");
                }

                socket = new Socket(family, type, protocol);
            }
            catch (Exception ex)
            {
                error = ex;
            }
        });
        thread.Start();
        thread.Join();
        return socket ?? throw new InvalidOperationException("could not create a socket in the namespace", error);
    }

    public async ValueTask DisposeAsync()
    {
        await ProcessRunner.RunAsync("ip", ["netns", "del", Name]);
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);
}
