using System.Diagnostics;
using System.Net;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Nat;

/// <summary>
/// A small internet made of real Linux namespaces, owned by one test:
/// <list type="bullet">
/// <item>the internet segment 203.0.113.0/24: a bridge <c>br0</c> in a namespace of its own, which is
/// also the coordinator's machine (<c>tunnelmesh serve</c> as a process on 203.0.113.10:8080, its STUN
/// responder on UDP 3478);</item>
/// <item>home routers (<see cref="NatRouter"/>) with a WAN address 203.0.113.21, .22, … and a LAN behind
/// them, doing nftables masquerade with a stateful forward filter;</item>
/// <item>hosts on those LANs (<see cref="LabHost"/>), each running nodes as <c>tunnelmesh join</c>
/// processes on default options (<see cref="LabNode"/>).</item>
/// </list>
/// Namespace names are unique per run; dispose kills every process by its id and deletes every
/// namespace (with its interfaces and nftables rules) and the state directory, also after a failure
/// half-way through building it.
/// </summary>
public sealed class NatLab : IAsyncDisposable
{
    public static readonly IPAddress CoordinatorAddress = IPAddress.Parse("203.0.113.10");

    /// <summary>The LANs of the first and second router (TEST-NET-1 and TEST-NET-2).</summary>
    private static readonly string[] LanPrefixes = ["192.0.2", "198.51.100"];

    private const string AdminKey = "nat-lab-admin-credential-0123456789";

    private readonly List<IAsyncDisposable> _owned = [];
    private readonly List<NatRouter> _routers = [];
    private int _ports;

    private NatLab(NetNamespace internet, string directory)
    {
        Internet = internet;
        Directory = directory;
    }

    /// <summary>The internet segment's namespace (the coordinator runs here).</summary>
    public NetNamespace Internet { get; }

    /// <summary>The lab's temporary directory (coordinator database, node state directories).</summary>
    public string Directory { get; }

    public string CoordinatorUrl => $"http://{CoordinatorAddress}:8080";

    public LabProcess Coordinator { get; private set; } = null!;

    public string AuthKey { get; private set; } = "";

    /// <summary>Whether <c>TM_NAT_VERBOSE=1</c>: nodes log at debug level, and tests print every process's output even when they pass.</summary>
    public static bool Verbose { get; } = Environment.GetEnvironmentVariable("TM_NAT_VERBOSE") == "1";

    /// <summary>How long any one step of building the lab or starting a node may take.</summary>
    public static TimeSpan StepDeadline { get; } = TimeSpan.FromSeconds(60);

    /// <summary>Builds the internet segment, starts the coordinator there and creates a reusable auth key.</summary>
    public static async Task<NatLab> StartAsync()
    {
        var internet = await NetNamespace.CreateAsync("tmni");
        var lab = new NatLab(internet, System.IO.Directory.CreateTempSubdirectory("tmnat").FullName);
        try
        {
            await internet.ExecCheckAsync("ip", "link", "add", "br0", "type", "bridge");
            await internet.ExecCheckAsync("ip", "addr", "add", $"{CoordinatorAddress}/24", "dev", "br0");
            await internet.ExecCheckAsync("ip", "link", "set", "br0", "up");

            // Default STUN ports, advertised as the --listen host with each: 203.0.113.10:3478 and :3479.
            lab.Coordinator = LabProcess.Start("serve", internet,
                ["serve", "--listen", lab.CoordinatorUrl, "--db", Path.Combine(lab.Directory, "coordinator.db"), "--admin-key", AdminKey]);
            lab._owned.Add(lab.Coordinator);
            await lab.Coordinator.WaitForOutputAsync("coordinator listening on", StepDeadline);
            lab.AuthKey = (await LabProcess.RunAsync(internet, "authkey", "create", "--server", lab.CoordinatorUrl, "--admin-key", AdminKey, "--reusable")).Trim();
            return lab;
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
    }

    /// <summary>Adds a home router on the internet segment with the next WAN address and LAN.</summary>
    public async Task<NatRouter> AddRouterAsync(NatKind kind)
    {
        int index = _routers.Count;
        var wan = IPAddress.Parse($"203.0.113.{21 + index}");
        var router = await NatRouter.CreateAsync(Internet, $"r{index}", $"router{index}", kind, wan, LanPrefixes[index % LanPrefixes.Length]);
        _routers.Add(router);
        _owned.Add(router);
        return router;
    }

    /// <summary>Adds a host on <paramref name="router"/>'s LAN with the next free address.</summary>
    public async Task<LabHost> AddHostAsync(NatRouter router)
    {
        var host = await LabHost.CreateAsync(router, $"h{Interlocked.Increment(ref _ports)}");
        _owned.Add(host);
        return host;
    }

    /// <summary>Starts <c>tunnelmesh join --hostname NAME</c> on <paramref name="host"/> with the lab's auth key and any <paramref name="extra"/> options.</summary>
    public async Task<LabNode> StartNodeAsync(string name, LabHost host, params string[] extra)
    {
        // TM_NAT_VERBOSE=1: nodes log at debug level (only the log level changes; the options stay the defaults).
        string[] args = Verbose ? [.. extra, "--verbose"] : extra;
        var node = await LabNode.StartAsync(name, host, Path.Combine(Directory, name), CoordinatorUrl, AuthKey, args, StepDeadline);
        _owned.Add(node);
        return node;
    }

    /// <summary>Polls <paramref name="probe"/> every 50 ms until it returns a value; fails naming <paramref name="what"/> after <paramref name="deadline"/>.</summary>
    public static async Task<T> UntilAsync<T>(Func<Task<T?>> probe, string what, TimeSpan deadline, Func<string>? detail = null)
        where T : class
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            if (watch.Elapsed > deadline)
            {
                throw new TimeoutException($"timed out after {deadline.TotalSeconds} s waiting for: {what}{(detail is null ? "" : "\n" + detail())}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>The output of every process of the lab, for a failure message.</summary>
    public string Logs() => string.Join("\n", _owned.OfType<LabNode>().Select(n => $"--- {n.Name} ---\n{Tail(n.Process.Output)}")
        .Prepend($"--- coordinator ---\n{Tail(Coordinator?.Output ?? "")}"));

    private static string Tail(string text) => Verbose ? text : string.Join('\n', text.Split('\n').TakeLast(40));

    public async ValueTask DisposeAsync()
    {
        var errors = new List<Exception>();
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            try
            {
                await _owned[i].DisposeAsync();
            }
            catch (Exception ex)
            {
                errors.Add(ex);
            }
        }

        _owned.Clear();
        await Internet.DisposeAsync();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A process that was killed may still be closing a file; the OS temp cleaner takes it.
        }

        if (errors.Count > 0)
        {
            throw new AggregateException("cleaning up the NAT lab", errors);
        }
    }
}
