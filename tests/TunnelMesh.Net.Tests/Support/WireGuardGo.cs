using System.Diagnostics;
using System.Text;

namespace TunnelMesh.Net.Tests.Support;

/// <summary>
/// A real wireguard-go, started in the root network namespace with a private mount namespace for
/// /run/wireguard (so its UAPI socket cannot collide with another instance), configured with `wg`,
/// and with its TUN device then moved into a test's namespace. Its UDP socket therefore stays on
/// the root namespace's loopback, where it talks to the MeshNode under test, while the kernel's
/// own ping and sockets use the TUN inside the namespace. Stopped by PID on dispose.
/// </summary>
public sealed class WireGuardGo : IAsyncDisposable
{
    private readonly StringBuilder _log = new();
    private readonly string _keyFile;
    private Process? _process;

    private WireGuardGo(string interfaceName, string privateKey, string publicKey, string keyFile)
    {
        InterfaceName = interfaceName;
        PrivateKey = privateKey;
        PublicKey = publicKey;
        _keyFile = keyFile;
    }

    public string InterfaceName { get; }

    public string PrivateKey { get; }

    public string PublicKey { get; }

    public int ListenPort { get; private set; }

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public static async Task<WireGuardGo> CreateAsync()
    {
        string privateKey = (await ProcessRunner.CheckAsync("wg", "genkey")).Trim();
        string publicKey = (await ProcessRunner.RunAsync("wg", ["pubkey"], stdin: privateKey + "\n")).Stdout.Trim();
        string keyFile = Path.Combine(Path.GetTempPath(), $"tm-wg-{Guid.NewGuid():N}.key");
        File.WriteAllText(keyFile, privateKey + "\n");
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return new WireGuardGo($"tmwg{Random.Shared.Next(100000, 999999)}", privateKey, publicKey, keyFile);
    }

    /// <summary>Starts the daemon, applies `wg set` arguments, moves the TUN into the namespace with an address.</summary>
    public async Task StartAsync(NetNamespace ns, string tunAddressCidr, params string[] wgSetArgs)
    {
        Directory.CreateDirectory("/run/wireguard");
        _process = ProcessRunner.Start(
            "unshare",
            ["--mount", "--propagation", "private", "sh", "-c", $"mount -t tmpfs -o size=1m,mode=0700 tmpfs /run/wireguard && exec wireguard-go -f {InterfaceName}"],
            _log,
            new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "1", ["LOG_LEVEL"] = "verbose" });

        // Bounded wait for the UAPI socket inside the daemon's mount namespace.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var probe = await Nsenter("test", "-S", $"/run/wireguard/{InterfaceName}.sock");
            if (probe.ExitCode == 0)
            {
                break;
            }

            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"wireguard-go did not come up: {Log}");
            }

            await Task.Delay(50);
        }

        await WgSetAsync(["private-key", _keyFile, .. wgSetArgs]);
        var port = await Nsenter("wg", "show", InterfaceName, "listen-port");
        ListenPort = int.Parse(port.Stdout.Trim());
        await ProcessRunner.CheckAsync("ip", "link", "set", InterfaceName, "netns", ns.Name);
        await ns.ExecCheckAsync("ip", "addr", "add", tunAddressCidr, "dev", InterfaceName);
        await ns.ExecCheckAsync("ip", "link", "set", InterfaceName, "up");
    }

    public async Task WgSetAsync(string[] args)
    {
        var r = await Nsenter(["wg", "set", InterfaceName, .. args]);
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"wg set failed: {r.All}");
        }
    }

    public async Task<string> ShowAsync(string what = "dump") => (await Nsenter("wg", "show", InterfaceName, what)).Stdout;

    private Task<ProcessRunner.Result> Nsenter(params string[] command) =>
        ProcessRunner.RunAsync("nsenter", ["-t", _process!.Id.ToString(), "-m", .. command], TimeSpan.FromSeconds(10));

    /// <summary>Stops the daemon (its TUN device goes with it).</summary>
    public async Task StopAsync()
    {
        if (_process is { } p)
        {
            _process = null;
            if (!p.HasExited)
            {
                p.Kill();
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await p.WaitForExitAsync(cts.Token);
            }

            p.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        File.Delete(_keyFile);
    }
}
