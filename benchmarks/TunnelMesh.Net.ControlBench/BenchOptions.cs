using System.Globalization;

namespace TunnelMesh.Net.ControlBench;

/// <summary>The command line of tunnelmesh-controlbench.</summary>
internal sealed record BenchOptions
{
    public const string Usage = """
        usage: tunnelmesh-controlbench [options]
          --startup-runs N      MeshNode.StartAsync -> first byte at a peer, N runs (default 20; 0 skips)
          --nodes LIST          simulated map-stream nodes, comma separated (default 1000,10000; 0 skips)
          --join-concurrency N  joins in flight while joining the simulated nodes (default 32)
          --connect-concurrency N  map streams being opened at once (default 64)
          --keepalive S         the coordinator's MapKeepAliveInterval in seconds (default 30, its default)
          --phase-timeout S     bound on joining, and on connecting, the simulated nodes (default 900)
          --change-timeout S    bound on one change reaching every node (default 120)
          --timeout S           bound on the whole run (default 3600)
        The coordinator runs as a child process (this program, role 'coordinator') on Kestrel at
        127.0.0.1 with SQLite in a temporary directory; its CPU, RSS and managed heap are its own.
        Prints a report, then one line 'JSON {...}'. Exit codes: 0 ok, 1 a measurement failed, 2 usage, 3 timeout.
        """;

    public string Role { get; init; } = "run";

    public int StartupRuns { get; init; } = 20;

    public IReadOnlyList<int> NodeCounts { get; init; } = [1000, 10000];

    public int JoinConcurrency { get; init; } = 32;

    public int ConnectConcurrency { get; init; } = 64;

    public int KeepAliveSeconds { get; init; } = 30;

    public int PhaseTimeoutSeconds { get; init; } = 900;

    public int ChangeTimeoutSeconds { get; init; } = 120;

    public int TimeoutSeconds { get; init; } = 3600;

    /// <summary>The coordinator role only: its SQLite file.</summary>
    public string? Database { get; init; }

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        int i = 0;
        if (args.Length > 0 && args[0] == "coordinator")
        {
            o = o with { Role = "coordinator" };
            i = 1;
        }

        for (; i < args.Length; i++)
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
                "--startup-runs" => o with { StartupRuns = Int(0, 10_000) },
                "--nodes" => o with { NodeCounts = ParseCounts(a, Value()) },
                "--join-concurrency" => o with { JoinConcurrency = Int(1, 1024) },
                "--connect-concurrency" => o with { ConnectConcurrency = Int(1, 1024) },
                "--keepalive" => o with { KeepAliveSeconds = Int(1, 3600) },
                "--phase-timeout" => o with { PhaseTimeoutSeconds = Int(1, 86_400) },
                "--change-timeout" => o with { ChangeTimeoutSeconds = Int(1, 86_400) },
                "--timeout" => o with { TimeoutSeconds = Int(1, 86_400) },
                "--db" => o with { Database = Value() },
                _ => throw new UsageException($"unknown option '{a}'"),
            };
        }

        if (o.Role == "coordinator" && o.Database is null)
        {
            throw new UsageException("the coordinator role needs --db");
        }

        return o;
    }

    private static int[] ParseCounts(string option, string value)
    {
        var counts = new List<int>();
        foreach (string part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n > 10_000)
            {
                throw new UsageException($"{option}: '{part}' is not a node count in 0..10000 (at most 10,000 connections over loopback)");
            }

            if (n > 0)
            {
                counts.Add(n);
            }
        }

        return [.. counts];
    }
}


/// <summary>A measurement could not be made: exit code 1.</summary>
internal sealed class BenchFailedException(string message) : Exception(message);
