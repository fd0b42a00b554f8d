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

    /// <summary>
    /// Drops <paramref name="percent"/>% of the packets crossing <paramref name="device"/> in each
    /// direction, at random (nftables <c>numgen random mod 100 &lt; N drop</c> on the device's netdev
    /// ingress and egress hooks; this kernel has no netem). Replaces an earlier setting for the same
    /// device; 0 removes the rules. Deleting the namespace removes them too.
    /// </summary>
    /// <remarks>
    /// Ingress (packets arriving from the device) is loss on the wire. Egress happens before the
    /// packet leaves the kernel, which reports the drop to the sender: kernel TCP keeps the segment
    /// and sends it again later rather than losing it, a UDP socket with IP_RECVERR sees ENOBUFS, and
    /// ping (which sets it) sends the same request again, so ping only measures the ingress loss.
    /// For wire-like loss of the kernel's packets on a <see cref="TunLink"/>, use its
    /// <see cref="TunLink.ReadLossPercent"/>.
    /// </remarks>
    public async Task SetRandomLossAsync(int percent, string device)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(percent);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percent, 100);
        string table = $"tmloss_{device}";

        // Declaring the table first makes the delete succeed whether or not it existed; nft -f applies all of it atomically.
        var script = new System.Text.StringBuilder()
            .AppendLine($"table netdev {table}")
            .AppendLine($"delete table netdev {table}");
        if (percent > 0)
        {
            script.AppendLine($"table netdev {table} {{")
                .AppendLine($"  chain ingress {{ type filter hook ingress device \"{device}\" priority 0; policy accept; numgen random mod 100 < {percent} drop; }}")
                .AppendLine($"  chain egress {{ type filter hook egress device \"{device}\" priority 0; policy accept; numgen random mod 100 < {percent} drop; }}")
                .AppendLine("}");
        }

        var r = await ProcessRunner.RunAsync("ip", ["netns", "exec", Name, "nft", "-f", "-"], stdin: script.ToString());
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"[{Name}] nft loss rules for {device} exited {r.ExitCode}: {r.All}\n{script}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await ProcessRunner.RunAsync("ip", ["netns", "del", Name]);
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);
}
