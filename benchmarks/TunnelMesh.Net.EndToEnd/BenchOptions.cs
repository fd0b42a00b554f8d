using System.Globalization;
using System.Net;

namespace TunnelMesh.Net.EndToEnd;

/// <summary>How the two ends are placed.</summary>
internal enum Placement
{
    /// <summary>Network namespaces when root, loopback otherwise.</summary>
    Auto,

    /// <summary>Two network namespaces joined by a veth pair (needs root).</summary>
    Netns,

    /// <summary>Both processes in this network namespace, over 127.0.0.1.</summary>
    Loopback,
}

/// <summary>What carries the TCP connection.</summary>
internal enum TcpCarrier
{
    /// <summary>Two MeshNodes: our TCP over our WireGuard over UDP.</summary>
    Mesh,

    /// <summary>The kernel's TCP (System.Net.Sockets) to an address given with --server-address: a reference over an existing path.</summary>
    Kernel,
}

/// <summary>Command-line options, shared by the three roles (run, server, client).</summary>
internal sealed class BenchOptions
{
    public const string Usage = """
        tunnelmesh-e2e: end-to-end TCP throughput, latency and allocation between two MeshNodes in two processes.

        usage: tunnelmesh-e2e [run] [options]
          --bytes N          bytes in the stream test (suffix K, M, G: binary), default 1G
          --warmup N         bytes at the start of the stream left out of the steady-state window, default bytes/8 (at most 128M; capped at bytes/2)
          --rr N             request/response round trips measured, default 10000
          --rr-warmup N      round trips before measuring, default 1000
          --rr-size N        request and response size in bytes, default 64
          --tests LIST       stream,rr (default both)
          --mode M           auto|netns|loopback (auto: netns when root, else loopback)
          --transport T      mesh|kernel (kernel: System.Net.Sockets TCP to --server-address, for references)
          --netns A,B        use these existing namespaces (client in A, server in B) instead of creating them
          --server-address X the server's address as the client sees it (with --netns; default 192.0.2.2 in made namespaces)
          --client-address X the address the client binds (with --netns; default any)
          --port N           TCP port of the server, default 5201
          --udp-port N       UDP port of the server node in netns mode, default 51820 (0 in loopback mode)
          --timeout S        bound on the whole run in seconds, default 600
          --label TEXT       label in the JSON line
        exit codes: 0 ok, 1 a test failed, 2 bad usage, 3 timeout, 4 environment (namespaces, child start)
        """;

    public string Role { get; private set; } = "run";

    public long Bytes { get; private set; } = 1L << 30;

    public long Warmup { get; private set; } = -1;

    public int RoundTrips { get; private set; } = 10_000;

    public int RoundTripWarmup { get; private set; } = 1_000;

    public int MessageSize { get; private set; } = 64;

    public bool RunStream { get; private set; } = true;

    public bool RunRr { get; private set; } = true;

    public Placement Mode { get; private set; } = Placement.Auto;

    public TcpCarrier Transport { get; private set; } = TcpCarrier.Mesh;

    public string[]? ExistingNetns { get; private set; }

    public IPAddress? ServerAddress { get; private set; }

    public IPAddress? ClientAddress { get; private set; }

    public int Port { get; private set; } = 5201;

    public int UdpPort { get; private set; } = -1;

    public int TimeoutSeconds { get; private set; } = 600;

    public string Label { get; private set; } = "";

    /// <summary>In the client: the server's UDP port (mesh) as the server reported it.</summary>
    public int PeerUdpPort { get; private set; }

    public long SteadyWarmup => Warmup >= 0 ? Math.Min(Warmup, Bytes / 2) : Math.Min(Bytes / 8, 128L << 20);

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        int i = 0;
        if (args.Length > 0 && args[0] is "run" or "server" or "client")
        {
            o.Role = args[0];
            i = 1;
        }

        for (; i < args.Length; i++)
        {
            string name = args[i];
            if (name is "-h" or "--help")
            {
                throw new UsageException("");
            }

            string Value() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{name} needs a value");
            switch (name)
            {
                case "--bytes": o.Bytes = Size(name, Value()); break;
                case "--warmup": o.Warmup = Size(name, Value()); break;
                case "--rr": o.RoundTrips = Int(name, Value(), 1); break;
                case "--rr-warmup": o.RoundTripWarmup = Int(name, Value(), 0); break;
                case "--rr-size": o.MessageSize = Int(name, Value(), 1); break;
                case "--tests":
                    var tests = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    if (tests.Length == 0 || tests.Any(t => t is not ("stream" or "rr")))
                    {
                        throw new UsageException("--tests takes stream, rr or stream,rr");
                    }

                    o.RunStream = tests.Contains("stream");
                    o.RunRr = tests.Contains("rr");
                    break;
                case "--mode": o.Mode = Enum<Placement>(name, Value()); break;
                case "--transport": o.Transport = Enum<TcpCarrier>(name, Value()); break;
                case "--netns":
                    var ns = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    o.ExistingNetns = ns.Length == 2 ? ns : throw new UsageException("--netns takes two names: CLIENT_NS,SERVER_NS");
                    break;
                case "--server-address": o.ServerAddress = Address(name, Value()); break;
                case "--client-address": o.ClientAddress = Address(name, Value()); break;
                case "--port": o.Port = Int(name, Value(), 1, 65535); break;
                case "--udp-port": o.UdpPort = Int(name, Value(), 0, 65535); break;
                case "--peer-udp-port": o.PeerUdpPort = Int(name, Value(), 1, 65535); break;
                case "--timeout": o.TimeoutSeconds = Int(name, Value(), 1); break;
                case "--label": o.Label = Value(); break;
                default: throw new UsageException($"unknown option {name}");
            }
        }

        if (o.MessageSize > 1 << 20)
        {
            throw new UsageException("--rr-size is at most 1M");
        }

        if (o.RunStream && o.Bytes < 8)
        {
            throw new UsageException("--bytes is at least 8");
        }

        if (o.Transport == TcpCarrier.Kernel && (o.ExistingNetns is null || o.ServerAddress is null) && o.Role == "run" && o.Mode != Placement.Loopback)
        {
            throw new UsageException("--transport kernel needs --netns A,B and --server-address (an existing path to measure), or --mode loopback");
        }

        return o;
    }

    /// <summary>The options a child gets: everything but the placement.</summary>
    public List<string> ChildArguments(string role)
    {
        var a = new List<string>
        {
            role,
            "--bytes", Bytes.ToString(CultureInfo.InvariantCulture),
            "--warmup", SteadyWarmup.ToString(CultureInfo.InvariantCulture),
            "--rr", RoundTrips.ToString(CultureInfo.InvariantCulture),
            "--rr-warmup", RoundTripWarmup.ToString(CultureInfo.InvariantCulture),
            "--rr-size", MessageSize.ToString(CultureInfo.InvariantCulture),
            "--tests", string.Join(',', new[] { RunStream ? "stream" : null, RunRr ? "rr" : null }.OfType<string>()),
            "--transport", Transport.ToString().ToLowerInvariant(),
            "--port", Port.ToString(CultureInfo.InvariantCulture),
            "--timeout", TimeoutSeconds.ToString(CultureInfo.InvariantCulture),
        };
        return a;
    }

    private static long Size(string name, string text) => BenchArgs.Size(name, text, 0, long.MaxValue, "");

    private static int Int(string name, string text, int min, int max = int.MaxValue) => BenchArgs.Int(name, text, min, max);

    private static T Enum<T>(string name, string text)
        where T : struct, Enum =>
        System.Enum.TryParse<T>(text, ignoreCase: true, out var v) && System.Enum.IsDefined(v)
            ? v
            : throw new UsageException($"{name}: '{text}' is not one of {string.Join('|', System.Enum.GetNames<T>()).ToLowerInvariant()}");

    private static IPAddress Address(string name, string text) =>
        IPAddress.TryParse(text, out var a) ? a : throw new UsageException($"{name}: '{text}' is not an IP address");
}


/// <summary>The environment would not cooperate (namespaces, child processes): exit code 4.</summary>
internal sealed class EnvironmentException(string message) : Exception(message);
