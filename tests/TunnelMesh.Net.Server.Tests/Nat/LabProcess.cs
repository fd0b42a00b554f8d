using System.Diagnostics;
using System.Globalization;
using System.Text;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Nat;

/// <summary>
/// The built <c>tunnelmesh</c> command run as its own process inside a lab namespace
/// (<c>ip netns exec NS dotnet tunnelmesh.dll …</c>, which execs, so the process id is the
/// command's). Killed by that id on dispose; its output is kept for failure messages.
/// </summary>
public sealed class LabProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private LabProcess(string what, Process process, StringBuilder output)
    {
        What = what;
        _process = process;
        _output = output;
    }

    /// <summary>What this process is, for messages ("serve", "join alpha").</summary>
    public string What { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Everything the process wrote to stdout and stderr so far.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>src/TunnelMesh.Net.Cli/bin/&lt;configuration of this test&gt;/&lt;framework&gt;/tunnelmesh.dll under the folder holding TunnelMesh.Net.sln.</summary>
    public static string CliDll()
    {
        var bin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string configuration = bin.Parent?.Name ?? "Release";
        string framework = bin.Name;
        DirectoryInfo? root = bin;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "TunnelMesh.Net.sln")))
        {
            root = root.Parent;
        }

        if (root is null)
        {
            throw new InvalidOperationException($"no TunnelMesh.Net.sln above {AppContext.BaseDirectory}");
        }

        string dll = Path.Combine(root.FullName, "src", "TunnelMesh.Net.Cli", "bin", configuration, framework, "tunnelmesh.dll");
        return File.Exists(dll) ? dll : throw new InvalidOperationException($"{dll} is missing: build src/TunnelMesh.Net.Cli -c {configuration} first");
    }

    /// <summary>The dotnet host running this test (DOTNET_HOST_PATH, else the one above the runtime directory, else dotnet on PATH).</summary>
    private static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host)
        {
            return host;
        }

        // .../dotnet/shared/Microsoft.NETCore.App/<version>/ → .../dotnet/dotnet
        var runtime = new DirectoryInfo(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory().TrimEnd(Path.DirectorySeparatorChar));
        string? candidate = runtime.Parent?.Parent?.Parent is { } root ? Path.Combine(root.FullName, "dotnet") : null;
        return candidate is not null && File.Exists(candidate) ? candidate : "dotnet";
    }

    /// <summary>Starts <c>tunnelmesh ARGS</c> inside <paramref name="ns"/>.</summary>
    public static LabProcess Start(string what, NetNamespace ns, IEnumerable<string> args)
    {
        string dotnet = DotnetHost();
        var output = new StringBuilder();
        var psi = new ProcessStartInfo(ExternalTools.Find("ip") ?? "ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in (string[])["netns", "exec", ns.Name, dotnet, CliDll(), .. args])
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        var process = new Process { StartInfo = psi };

        // Each line stamped with the wall clock, so the logs of the lab's processes can be read side by side.
        void Append(object? sender, DataReceivedEventArgs e)
        {
            if (e.Data is not null)
            {
                lock (output)
                {
                    output.Append(DateTime.UtcNow.ToString("HH:mm:ss.fff ", CultureInfo.InvariantCulture)).AppendLine(e.Data);
                }
            }
        }

        process.OutputDataReceived += Append;
        process.ErrorDataReceived += Append;
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new LabProcess(what, process, output);
    }

    /// <summary>Runs <c>tunnelmesh ARGS</c> inside <paramref name="ns"/> to its end and returns its stdout; throws with the output on a non-zero exit.</summary>
    public static async Task<string> RunAsync(NetNamespace ns, params string[] args)
    {
        string dotnet = DotnetHost();
        var r = await ns.ExecAsync(dotnet, [CliDll(), .. args], TimeSpan.FromSeconds(60));
        return r.ExitCode == 0 ? r.Stdout : throw new InvalidOperationException($"tunnelmesh {string.Join(' ', args)} exited {r.ExitCode}: {r.All}");
    }

    /// <summary>Waits until the output holds <paramref name="text"/>; fails with the output if the process ends first or the deadline passes.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan deadline)
    {
        var watch = Stopwatch.StartNew();
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (HasExited)
            {
                throw new InvalidOperationException($"{What} exited ({_process.ExitCode}) before printing '{text}':\n{Output}");
            }

            if (watch.Elapsed > deadline)
            {
                throw new TimeoutException($"{What} did not print '{text}' in {deadline.TotalSeconds} s:\n{Output}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>User plus system CPU time of the process so far, from /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s).</summary>
    public TimeSpan CpuTime()
    {
        string stat = File.ReadAllText($"/proc/{Id}/stat");
        // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        long ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / 100.0);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
            // It ended on its own meanwhile.
        }
        finally
        {
            _process.Dispose();
        }
    }
}
