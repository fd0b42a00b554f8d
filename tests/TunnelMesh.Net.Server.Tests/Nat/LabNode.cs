using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using TunnelMesh.Net.Cli;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Nat;

/// <summary>What <c>tunnelmesh peers --json</c> says about one peer.</summary>
public sealed record LabPeer(string Name, string Path, string? Endpoint, bool Online)
{
    /// <summary>Any direct path (the paths work may name LAN and WAN paths apart: "direct", "directlan", …).</summary>
    public bool IsDirect => Path.StartsWith("direct", StringComparison.OrdinalIgnoreCase);

    public bool IsRelay => Path.Equals("relay", StringComparison.OrdinalIgnoreCase);

    /// <summary>The endpoint's address, when it has one.</summary>
    public IPAddress? EndpointAddress => Endpoint is { } e && IPEndPoint.TryParse(e, out var ep) ? ep.Address : null;

    public override string ToString() => $"{Name}: {Path} {Endpoint ?? "-"} {(Online ? "online" : "offline")}";
}

/// <summary>
/// A node run by <c>tunnelmesh join</c> as a process on a lab host, on default options (no
/// <c>--listen-address</c>: the host has only its LAN address and lo). Its path to a peer comes from
/// <c>tunnelmesh peers --json</c> against its local API.
/// </summary>
public sealed partial class LabNode : IAsyncDisposable
{
    private LabNode(string name, LabHost host, string stateDirectory, LabProcess process)
    {
        Name = name;
        Host = host;
        StateDirectory = stateDirectory;
        Process = process;
    }

    public string Name { get; }

    public LabHost Host { get; }

    public string StateDirectory { get; }

    public LabProcess Process { get; }

    /// <summary>The node's mesh IPv4 address.</summary>
    public IPAddress MeshAddress { get; private set; } = IPAddress.None;

    /// <summary>The loopback port of the node's SOCKS5 proxy inside its host (0 without <c>--socks5</c>).</summary>
    public int Socks5Port { get; private set; }

    /// <summary>When <c>join</c> reported the node started (joined, peer map in hand).</summary>
    public long OnlineTimestamp { get; private set; }

    internal static async Task<LabNode> StartAsync(string name, LabHost host, string stateDirectory, string url, string authKey, IEnumerable<string> extra, TimeSpan deadline)
    {
        string[] args = ["join", "--server", url, "--auth-key", authKey, "--hostname", name, "--state-dir", stateDirectory, .. extra];
        var process = LabProcess.Start($"join {name}", host.Namespace, args);
        var node = new LabNode(name, host, stateDirectory, process);
        try
        {
            await process.WaitForOutputAsync("joined as ", deadline);
            node.OnlineTimestamp = Stopwatch.GetTimestamp();
            var joined = JoinedLine().Match(process.Output);
            node.MeshAddress = IPAddress.Parse(joined.Groups[1].Value);
            if (args.Contains("--socks5"))
            {
                await process.WaitForOutputAsync("SOCKS5 proxy on ", deadline);
                node.Socks5Port = int.Parse(SocksLine().Match(process.Output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            }

            if (args.Contains("--forward"))
            {
                await process.WaitForOutputAsync("forwarding ", deadline);
            }

            var watch = Stopwatch.StartNew();
            while (!File.Exists(LocalApiClient.SocketPath(stateDirectory)))
            {
                if (watch.Elapsed > deadline)
                {
                    throw new TimeoutException($"{name} has no local API after {deadline.TotalSeconds} s:\n{process.Output}");
                }

                await Task.Delay(20);
            }

            return node;
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>The peers as <c>tunnelmesh peers --json</c> prints them.</summary>
    public async Task<IReadOnlyList<LabPeer>> PeersAsync()
    {
        var stdout = new SyncWriter();
        var stderr = new SyncWriter();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        int rc = await TunnelMeshCli.RunAsync(["peers", "--json", "--state-dir", StateDirectory], stdout, stderr, timeout.Token);
        if (rc != 0)
        {
            throw new InvalidOperationException($"peers --json on {Name} exited {rc}: {stderr.Text}");
        }

        using var json = JsonDocument.Parse(stdout.Text);
        return json.RootElement.EnumerateArray().Select(p => new LabPeer(
            p.GetProperty("name").GetString() ?? "",
            p.GetProperty("path").GetString() ?? "",
            p.TryGetProperty("endpoint", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null,
            p.GetProperty("online").GetBoolean())).ToList();
    }

    /// <summary>This node's view of <paramref name="peer"/>, or null while it is not in the map.</summary>
    public async Task<LabPeer?> PeerAsync(LabNode peer) =>
        (await PeersAsync()).FirstOrDefault(p => p.Name == peer.Name);

    /// <summary><c>tunnelmesh ping PEER --count N</c> against this node's local API; the output (one line per pong).</summary>
    public async Task<string> PingAsync(LabNode peer, int count = 1)
    {
        var stdout = new SyncWriter();
        var stderr = new SyncWriter();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int rc = await TunnelMeshCli.RunAsync(["ping", peer.Name, "--count", count.ToString(System.Globalization.CultureInfo.InvariantCulture), "--state-dir", StateDirectory], stdout, stderr, timeout.Token);
        return rc == 0 ? stdout.Text : throw new InvalidOperationException($"ping {peer.Name} from {Name} exited {rc}: {stderr.Text}{stdout.Text}");
    }

    public ValueTask DisposeAsync() => Process.DisposeAsync();

    [GeneratedRegex(@"joined as \S+ \((\d+\.\d+\.\d+\.\d+)")]
    private static partial Regex JoinedLine();

    [GeneratedRegex(@"SOCKS5 proxy on 127\.0\.0\.1:(\d+)")]
    private static partial Regex SocksLine();
}
