using System.Globalization;

namespace TunnelMesh.Net.HttpBench;

/// <summary>The scenarios, in the order they run.</summary>
internal enum Scenario
{
    /// <summary>Small GETs one after another on one keep-alive connection.</summary>
    Sequential,

    /// <summary>Small GETs from <c>--concurrency</c> workers at once.</summary>
    Concurrent,

    /// <summary>One <c>--bytes</c> response body.</summary>
    Download,

    /// <summary>One <c>--bytes</c> request body.</summary>
    Upload,
}

/// <summary>How the client reaches the app.</summary>
internal enum ClientPath
{
    /// <summary>The reference: a plain HttpClient to Kestrel's 127.0.0.1 endpoint (kernel loopback TCP).</summary>
    Loopback,

    /// <summary><c>nodeB.CreateHttpClient()</c> to node A's mesh address: our TCP over our WireGuard over loopback UDP.</summary>
    Mesh,

    /// <summary>A plain HttpClient through node B's SOCKS5 proxy (kernel loopback TCP to the proxy, then the mesh).</summary>
    Socks,
}

/// <summary>The command line of tunnelmesh-httpbench.</summary>
internal sealed record BenchOptions
{
    public const string Usage = """
        usage: tunnelmesh-httpbench [options]
          --requests N          small GETs per path and round, sequential and again concurrent (default 5000)
          --concurrency C       workers in the concurrent scenario (default 16)
          --bytes N             size of the download and of the upload (suffix K, M, G: binary; default 256M)
          --scenarios LIST      sequential,concurrent,download,upload (default all; 'transfer' = download,upload)
          --paths LIST          loopback,mesh,socks (default all; loopback is always measured: it is the reference)
          --rounds R            rounds; each runs every scenario on every path, the order of the paths
                                reversed every other round (default 2; figures add the rounds up)
          --warmup N            small GETs per path before measuring, plus one 16 MiB download and upload (default 1000)
          --scenario-timeout S  bound on one scenario on one path in one round (default 60); a scenario cut
                                short is reported with what it did and marked 'incomplete'
          --timeout S           bound on the whole run (default 600)
          --json                print only one JSON document on stdout (progress still goes to stderr)
          --alloc-trace         sample what each measurement allocates, by type (GCAllocationTick, ~1 per 100 KB),
                                to stderr; the listener's own allocation then counts in the figures
        One process: two MeshNodes with static WireGuard peers over 127.0.0.1 UDP, Kestrel serving the same
        minimal API on node A's mesh address (port 80) and on 127.0.0.1:0, and the clients.
        Exit codes: 0 ok, 1 a measurement failed, 2 usage, 3 timeout, 130 interrupted.
        """;

    public int Requests { get; init; } = 5000;

    public int Concurrency { get; init; } = 16;

    public long Bytes { get; init; } = 256L << 20;

    public IReadOnlyList<Scenario> Scenarios { get; init; } = Enum.GetValues<Scenario>();

    public IReadOnlyList<ClientPath> Paths { get; init; } = Enum.GetValues<ClientPath>();

    public int Rounds { get; init; } = 2;

    public int Warmup { get; init; } = 1000;

    public int ScenarioTimeoutSeconds { get; init; } = 60;

    public int TimeoutSeconds { get; init; } = 600;

    public bool Json { get; init; }

    public bool AllocTrace { get; init; }

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a is "-h" or "--help")
            {
                throw new UsageException("");
            }

            string Value() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{a} needs a value");
            int Int(int min, int max) => BenchArgs.Int(a, Value(), min, max);

            o = a switch
            {
                "--requests" => o with { Requests = Int(1, 10_000_000) },
                "--concurrency" => o with { Concurrency = Int(1, 1024) },
                "--bytes" => o with { Bytes = Size(a, Value()) },
                "--scenarios" => o with { Scenarios = ParseScenarios(a, Value()) },
                "--paths" => o with { Paths = ParsePaths(a, Value()) },
                "--rounds" => o with { Rounds = Int(1, 100) },
                "--warmup" => o with { Warmup = Int(0, 10_000_000) },
                "--scenario-timeout" => o with { ScenarioTimeoutSeconds = Int(1, 86_400) },
                "--timeout" => o with { TimeoutSeconds = Int(1, 86_400) },
                "--json" => o with { Json = true },
                "--alloc-trace" => o with { AllocTrace = true },
                _ => throw new UsageException($"unknown option '{a}'"),
            };
        }

        return o;
    }

    private static Scenario[] ParseScenarios(string option, string value)
    {
        var set = new SortedSet<Scenario>();
        foreach (string part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (part.Equals("transfer", StringComparison.OrdinalIgnoreCase))
            {
                set.Add(Scenario.Download);
                set.Add(Scenario.Upload);
            }
            else if (Enum.TryParse(part, ignoreCase: true, out Scenario s) && Enum.IsDefined(s))
            {
                set.Add(s);
            }
            else
            {
                throw new UsageException($"{option}: '{part}' is not one of sequential, concurrent, download, upload, transfer");
            }
        }

        return set.Count > 0 ? [.. set] : throw new UsageException($"{option} needs at least one scenario");
    }

    private static ClientPath[] ParsePaths(string option, string value)
    {
        var set = new SortedSet<ClientPath> { ClientPath.Loopback };
        foreach (string part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (Enum.TryParse(part, ignoreCase: true, out ClientPath p) && Enum.IsDefined(p))
            {
                set.Add(p);
            }
            else
            {
                throw new UsageException($"{option}: '{part}' is not one of loopback, mesh, socks");
            }
        }

        return [.. set];
    }

    private static long Size(string name, string text) => BenchArgs.Size(name, text, 1, 64L << 30, " from 1 byte to 64G");
}


/// <summary>A measurement could not be made (wrong byte count, bad status): exit code 1.</summary>
internal sealed class BenchFailedException(string message) : Exception(message);
