using System.Diagnostics;
using System.Net;

namespace TunnelMesh.Net.EndToEnd;

/// <summary>
/// Where the two processes run: two network namespaces joined by a veth pair (made here, named
/// after this process's id, deleted on dispose), two existing namespaces, or this namespace's loopback.
/// Addresses inside made namespaces are from TEST-NET-1 (192.0.2.0/24) and exist only there.
/// </summary>
internal sealed class Topology : IAsyncDisposable
{
    private readonly bool _owned;

    private Topology(string? clientNs, string? serverNs, IPAddress clientAddress, IPAddress serverAddress, bool owned, string description)
    {
        ClientNs = clientNs;
        ServerNs = serverNs;
        ClientAddress = clientAddress;
        ServerAddress = serverAddress;
        _owned = owned;
        Description = description;
    }

    public string? ClientNs { get; }

    public string? ServerNs { get; }

    public IPAddress ClientAddress { get; }

    public IPAddress ServerAddress { get; }

    /// <summary>Each process has a namespace to itself, so the namespace's counters are its own.</summary>
    public bool SeparateNamespaces => ClientNs is not null;

    public string Description { get; }

    public string Mode => ClientNs is null ? "loopback" : "netns";

    public static async Task<Topology> CreateAsync(BenchOptions o, CancellationToken ct)
    {
        bool root = Environment.IsPrivilegedProcess;
        if (o.ExistingNetns is { } existing)
        {
            return new Topology(existing[0], existing[1], o.ClientAddress ?? IPAddress.Any, o.ServerAddress!, owned: false,
                $"existing namespaces {existing[0]} (client) and {existing[1]} (server {o.ServerAddress})");
        }

        var mode = o.Mode == Placement.Auto ? (root ? Placement.Netns : Placement.Loopback) : o.Mode;
        if (mode == Placement.Loopback)
        {
            return new Topology(null, null, IPAddress.Loopback, IPAddress.Loopback, owned: false, "both processes on 127.0.0.1 (one network namespace)");
        }

        if (!root)
        {
            throw new EnvironmentException("--mode netns needs root (ip netns add); use --mode loopback");
        }

        int id = Environment.ProcessId % 1_000_000;
        string a = $"tmbe{id}a", b = $"tmbe{id}b", va = $"tmbe{id}va", vb = $"tmbe{id}vb";
        var clientAddress = IPAddress.Parse("192.0.2.1");
        var serverAddress = IPAddress.Parse("192.0.2.2");
        var topology = new Topology(a, b, clientAddress, serverAddress, owned: true, $"namespaces {a} (client 192.0.2.1) and {b} (server 192.0.2.2), veth {va}/{vb}");
        try
        {
            await IpAsync(ct, "netns", "add", a);
            await IpAsync(ct, "netns", "add", b);
            await IpAsync(ct, "link", "add", va, "type", "veth", "peer", "name", vb);
            await IpAsync(ct, "link", "set", va, "netns", a);
            await IpAsync(ct, "link", "set", vb, "netns", b);
            await IpAsync(ct, "-n", a, "addr", "add", "192.0.2.1/24", "dev", va);
            await IpAsync(ct, "-n", b, "addr", "add", "192.0.2.2/24", "dev", vb);
            foreach (var (ns, dev) in new[] { (a, va), (b, vb) })
            {
                await IpAsync(ct, "-n", ns, "link", "set", "lo", "up");
                await IpAsync(ct, "-n", ns, "link", "set", dev, "up");
            }

            return topology;
        }
        catch
        {
            await topology.DisposeAsync();
            throw;
        }
    }

    /// <summary>The command line that runs <paramref name="program"/> in the namespace (or as is).</summary>
    public static (string File, List<string> Args) Wrap(string? ns, string program, IEnumerable<string> args)
    {
        if (ns is null)
        {
            return (program, args.ToList());
        }

        var all = new List<string> { "netns", "exec", ns, program };
        all.AddRange(args);
        return ("ip", all);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_owned)
        {
            return;
        }

        // Deleting a namespace also deletes the veth end inside it (and with it the pair).
        foreach (string? ns in new[] { ClientNs, ServerNs })
        {
            if (ns is not null)
            {
                try
                {
                    await IpAsync(CancellationToken.None, "netns", "del", ns);
                }
                catch (EnvironmentException ex)
                {
                    Console.Error.WriteLine($"cleanup: {ex.Message}");
                }
            }
        }
    }

    private static async Task IpAsync(CancellationToken ct, params string[] args)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi) ?? throw new EnvironmentException("could not start ip");
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(TimeSpan.FromSeconds(10));
        var stderr = p.StandardError.ReadToEndAsync(limit.Token);
        try
        {
            await p.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill();
            throw new EnvironmentException($"ip {string.Join(' ', args)}: no answer within 10 s");
        }

        if (p.ExitCode != 0)
        {
            throw new EnvironmentException($"ip {string.Join(' ', args)} exited {p.ExitCode}: {(await stderr).Trim()}");
        }
    }
}
