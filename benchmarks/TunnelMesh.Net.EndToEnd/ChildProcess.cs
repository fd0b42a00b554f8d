using System.Diagnostics;
using System.Text.Json;

namespace TunnelMesh.Net.EndToEnd;

/// <summary>
/// A child of the 'run' role (server or client), started by command line, stopped by its own id.
/// Its stderr is passed through with a prefix; on stdout it says "READY port" and "RESULT json".
/// </summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _name;
    private readonly TaskCompletionSource<int> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _result;

    private ChildProcess(Process process, string name)
    {
        _process = process;
        _name = name;
    }

    public int Id => _process.Id;

    public static ChildProcess Start(string name, string? ns, IEnumerable<string> args, IDictionary<string, string> environment)
    {
        string self = Environment.ProcessPath ?? throw new EnvironmentException("cannot tell this program's path");
        var selfArgs = new List<string>();
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            selfArgs.Add(typeof(ChildProcess).Assembly.Location);
        }

        selfArgs.AddRange(args);
        var (file, all) = Topology.Wrap(ns, self, selfArgs);
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string a in all)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in environment)
        {
            psi.Environment[k] = v;
        }

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var child = new ChildProcess(process, name);
        process.OutputDataReceived += (_, e) => child.OnStdout(e.Data);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                child._stderrClosed.TrySetResult();
            }
            else
            {
                Console.Error.WriteLine($"  [{name}] {e.Data}");
            }
        };
        try
        {
            if (!process.Start())
            {
                throw new EnvironmentException($"could not start the {name}: {file}");
            }
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new EnvironmentException($"could not start the {name} ({file}): {ex.Message}");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Waits for "READY port"; fails if the child exits first.</summary>
    public async Task<int> WaitReadyAsync(TimeSpan limit, CancellationToken ct)
    {
        var exited = _process.WaitForExitAsync(ct);
        var first = await Task.WhenAny(_ready.Task, exited, Task.Delay(limit, ct));
        if (first == _ready.Task)
        {
            return await _ready.Task;
        }

        ct.ThrowIfCancellationRequested();
        if (first == exited)
        {
            await _stderrClosed.Task.WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            throw new BenchFailedException($"the {_name} exited with code {_process.ExitCode} before it was ready");
        }

        throw new BenchFailedException($"the {_name} was not ready within {limit.TotalSeconds:F0} s");
    }

    /// <summary>Waits for the child to exit and returns its report.</summary>
    public async Task<ChildReport> WaitResultAsync(CancellationToken ct)
    {
        await _process.WaitForExitAsync(ct);
        await Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_process.ExitCode != 0 || _result is null)
        {
            throw new BenchFailedException($"the {_name} failed (exit code {_process.ExitCode}{(_result is null ? ", no result" : "")}); its messages are above");
        }

        return JsonSerializer.Deserialize<ChildReport>(_result, Json.Options)
            ?? throw new BenchFailedException($"the {_name} printed an empty result");
    }

    private void OnStdout(string? line)
    {
        if (line is null)
        {
            _stdoutClosed.TrySetResult();
        }
        else if (line.StartsWith("READY ", StringComparison.Ordinal) && int.TryParse(line.AsSpan(6), out int port))
        {
            _ready.TrySetResult(port);
        }
        else if (line.StartsWith("RESULT ", StringComparison.Ordinal))
        {
            _result = line[7..];
        }
        else
        {
            Console.Error.WriteLine($"  [{_name}] {line}");
        }
    }

    /// <summary>Kills the child (by its id, with its descendants) if it is still running.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
        catch (InvalidOperationException)
        {
            // never started or already reaped
        }

        _process.Dispose();
    }
}

/// <summary>A test failed: exit code 1.</summary>
internal sealed class BenchFailedException(string message) : Exception(message);

internal static class Json
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
