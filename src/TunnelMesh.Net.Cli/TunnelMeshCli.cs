using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using TunnelMesh.Net.Control;

namespace TunnelMesh.Net.Cli;

/// <summary>
/// The commands of <c>tunnelmesh</c>. Every command has <c>--help</c>; a failure prints one line,
/// <c>tunnelmesh: error: …</c>, to standard error and exits with a non-zero code (1 for a failed
/// operation, 2 for bad usage).
/// </summary>
internal static partial class TunnelMeshCli
{
    /// <summary>Exit code of a failed operation.</summary>
    public const int Failed = 1;

    /// <summary>Exit code of bad usage.</summary>
    public const int Usage = 2;

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>Parses <paramref name="args"/> and runs the command, writing to the given writers.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        var root = Build(stdout, stderr);
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            await stderr.WriteLineAsync($"tunnelmesh: error: {string.Join("; ", parse.Errors.Select(e => e.Message))} (see --help)").ConfigureAwait(false);
            return Usage;
        }

        var config = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false };
        try
        {
            return await parse.InvokeAsync(config, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return 0;
        }
        catch (CliException e)
        {
            await stderr.WriteLineAsync($"tunnelmesh: error: {e.Message}").ConfigureAwait(false);
            return e.ExitCode;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or MeshConfigurationException or MeshControlException or TimeoutException or System.Net.Sockets.SocketException or UnauthorizedAccessException or InvalidOperationException or ArgumentException or JsonException or Microsoft.Extensions.Options.OptionsValidationException)
        {
            await stderr.WriteLineAsync($"tunnelmesh: error: {OneLine(e.Message)}").ConfigureAwait(false);
            return Failed;
        }
    }

    private static RootCommand Build(TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("tunnelmesh: an encrypted peer-to-peer mesh (WireGuard) with a coordinator, in one .NET tool.");
        root.Subcommands.Add(ServeCommand.Create(stdout));
        root.Subcommands.Add(AuthKeyCommands.Create(stdout));
        root.Subcommands.Add(JoinCommand.Create(stdout, stderr));
        root.Subcommands.Add(LocalCommands.Status(stdout));
        root.Subcommands.Add(LocalCommands.Peers(stdout));
        root.Subcommands.Add(LocalCommands.Ping(stdout));
        root.Subcommands.Add(NetCheckCommand.Create(stdout));
        return root;
    }

    /// <summary>The first line of a message, trimmed.</summary>
    internal static string OneLine(string message)
    {
        int nl = message.IndexOfAny(['\r', '\n']);
        return (nl < 0 ? message : message[..nl]).Trim();
    }

    /// <summary>The default state directory: $TUNNELMESH_STATE_DIR, /var/lib/tunnelmesh for root, else ~/.local/state/tunnelmesh.</summary>
    internal static string DefaultStateDirectory()
    {
        string? env = Environment.GetEnvironmentVariable("TUNNELMESH_STATE_DIR");
        if (!string.IsNullOrEmpty(env))
        {
            return env;
        }

        if (OperatingSystem.IsLinux() && Environment.UserName == "root")
        {
            return "/var/lib/tunnelmesh";
        }

        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(home, ".local", "state", "tunnelmesh");
    }

    /// <summary>The --state-dir option, shared by join, status, peers and ping.</summary>
    internal static Option<string> StateDirOption() => new("--state-dir")
    {
        Description = "The node's state directory (key, token, last peer map, local API socket). Default: $TUNNELMESH_STATE_DIR, /var/lib/tunnelmesh as root, else ~/.local/state/tunnelmesh.",
        DefaultValueFactory = _ => DefaultStateDirectory(),
    };

    /// <summary>The --server option: the coordinator's http or https URL.</summary>
    internal static Option<Uri> ServerOption() => new("--server")
    {
        Description = "The coordinator's URL, e.g. http://127.0.0.1:8080.",
        Required = true,
        CustomParser = r =>
        {
            string text = r.Tokens.Count == 1 ? r.Tokens[0].Value : "";
            if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")
            {
                return uri;
            }

            r.AddError($"--server: '{text}' is not an http or https URL");
            return null;
        },
    };

    /// <summary>Reads a problem-details body's detail (or the status line) from a failed response.</summary>
    internal static async Task<string> ProblemAsync(HttpResponseMessage response, CancellationToken ct)
    {
        string reason = $"{(int)response.StatusCode} {response.ReasonPhrase}";
        try
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(ct).ConfigureAwait(false);
            if (problem.ValueKind == JsonValueKind.Object)
            {
                string? detail = problem.TryGetProperty("detail", out var d) ? d.GetString() : null;
                string? title = problem.TryGetProperty("title", out var t) ? t.GetString() : null;
                return $"{reason}: {detail ?? title ?? "no reason given"}";
            }
        }
        catch (JsonException)
        {
        }

        return reason;
    }

    internal static string Format(DateTimeOffset? t) => t is { } v ? v.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "-";
}

/// <summary>A failure with a message meant for the user and an exit code.</summary>
internal sealed class CliException(string message, int exitCode = TunnelMeshCli.Failed) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
