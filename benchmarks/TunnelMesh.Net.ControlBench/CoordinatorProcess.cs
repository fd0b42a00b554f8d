using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using TunnelMesh.Net.Control;

namespace TunnelMesh.Net.ControlBench;

/// <summary>
/// The coordinator as a child process of this program (role 'coordinator'), with its SQLite file in
/// a temporary directory of its own. Stopped by closing its stdin, killed by its own id if it does not stop.
/// </summary>
internal sealed class CoordinatorProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly TaskCompletionSource<int> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _lines;

    private CoordinatorProcess(Process process, string directory, string adminCredential)
    {
        _process = process;
        _directory = directory;
        AdminCredential = adminCredential;
    }

    public Uri BaseUri { get; private set; } = null!;

    public string AdminCredential { get; }

    /// <summary>An HTTP client with the admin credential.</summary>
    public HttpClient Admin { get; private set; } = null!;

    public int Id => _process.Id;

    public static async Task<CoordinatorProcess> StartAsync(BenchOptions options, CancellationToken ct)
    {
        string directory = Directory.CreateTempSubdirectory("tm-controlbench-").FullName;
        string admin = "bench-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(24));
        string self = Environment.ProcessPath ?? throw new BenchFailedException("cannot tell this program's path");
        var psi = new ProcessStartInfo(self)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            psi.ArgumentList.Add(typeof(CoordinatorProcess).Assembly.Location);
        }

        foreach (string a in new[] { "coordinator", "--db", Path.Combine(directory, "mesh.db"), "--keepalive", options.KeepAliveSeconds.ToString(CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment[CoordinatorRole.AdminVariable] = admin;
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var child = new CoordinatorProcess(process, directory, admin);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line && line.StartsWith("READY ", StringComparison.Ordinal) && int.TryParse(line.AsSpan(6), CultureInfo.InvariantCulture, out int port))
            {
                child._ready.TrySetResult(port);
            }
            else
            {
                child.PassThrough(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) => child.PassThrough(e.Data);
        if (!process.Start())
        {
            throw new BenchFailedException("could not start the coordinator process");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Task exited = process.WaitForExitAsync(ct);
        Task first = await Task.WhenAny(child._ready.Task, exited, Task.Delay(TimeSpan.FromSeconds(60), ct));
        if (first != child._ready.Task)
        {
            await child.DisposeAsync();
            ct.ThrowIfCancellationRequested();
            throw new BenchFailedException(first == exited ? "the coordinator exited before it was ready" : "the coordinator was not ready within 60 s");
        }

        child.BaseUri = new Uri($"http://127.0.0.1:{await child._ready.Task}/");
        child.Admin = new HttpClient { BaseAddress = child.BaseUri, Timeout = TimeSpan.FromSeconds(120) };
        child.Admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", admin);
        return child;
    }

    /// <summary>Lines the coordinator printed (warnings and errors), after the first <see cref="MaxLines"/> shown.</summary>
    public int SuppressedLines => Math.Max(0, Volatile.Read(ref _lines) - MaxLines);

    private const int MaxLines = 10;

    /// <summary>The coordinator's own lines, the first few shortened to 300 characters (a stream warning carries a stack trace).</summary>
    private void PassThrough(string? line)
    {
        if (line is not null && Interlocked.Increment(ref _lines) <= MaxLines)
        {
            Console.Error.WriteLine("  [coordinator] " + (line.Length > 300 ? line[..300] + " …" : line));
        }
    }

    /// <summary>The process's CPU, RSS and heap now (<paramref name="collect"/>: after a full compacting GC, so the heap is what is live).</summary>
    public async Task<CoordinatorStats> StatsAsync(bool collect, CancellationToken ct) =>
        (await Admin.GetFromJsonAsync<CoordinatorStats>(collect ? "bench/stats?gc=1" : "bench/stats", Json.Options, ct))!;

    /// <summary>A reusable auth key that expires after a day.</summary>
    public async Task<string> CreateReusableKeyAsync(CancellationToken ct)
    {
        using HttpResponseMessage r = await Admin.PostAsJsonAsync("api/v1/authkeys", new CreateAuthKeyRequest(Reusable: true, Description: "controlbench"), Json.Api, ct);
        r.EnsureSuccessStatusCode();
        return (await r.Content.ReadFromJsonAsync<CreatedAuthKey>(Json.Api, ct))!.Key;
    }

    public async Task<HealthResponse> HealthAsync(CancellationToken ct) =>
        (await Admin.GetFromJsonAsync<HealthResponse>("api/v1/health", Json.Api, ct))!;

    public async ValueTask DisposeAsync()
    {
        Admin?.Dispose();

        try
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.Close();
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                try
                {
                    await _process.WaitForExitAsync(wait.Token);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill(entireProcessTree: true);
                    await _process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }
            }
        }
        catch (InvalidOperationException)
        {
            // never started or already reaped
        }

        _process.Dispose();
        if (SuppressedLines > 0)
        {
            Console.Error.WriteLine($"  [coordinator] … {SuppressedLines} more lines not shown");
        }
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class Json
{
    /// <summary>The coordinator's API (camelCase, as ApiJson on the server).</summary>
    public static readonly JsonSerializerOptions Api = new(JsonSerializerDefaults.Web);

    /// <summary>This tool's own report and stats (snake_case).</summary>
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
