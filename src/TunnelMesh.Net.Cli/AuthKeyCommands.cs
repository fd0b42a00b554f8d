using System.CommandLine;
using System.Globalization;
using TunnelMesh.Net.Admin;

namespace TunnelMesh.Net.Cli;

/// <summary><c>tunnelmesh authkey create|list|revoke</c>: the coordinator's admin API.</summary>
internal static class AuthKeyCommands
{
    public static Command Create(TextWriter stdout)
    {
        var command = new Command("authkey", "Create, list and revoke auth keys (needs the coordinator's admin credential).");
        command.Subcommands.Add(CreateKey(stdout));
        command.Subcommands.Add(List(stdout));
        command.Subcommands.Add(Revoke(stdout));
        return command;
    }

    private static (Option<Uri> Server, Option<string> AdminKey) Common() =>
    (
        TunnelMeshCli.ServerOption(),
        new Option<string>("--admin-key")
        {
            Description = "The admin credential. Default: $TUNNELMESH_ADMIN_KEY (prefer the variable: arguments are visible to other users).",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TUNNELMESH_ADMIN_KEY") ?? "",
        });

    private static Command CreateKey(TextWriter stdout)
    {
        var (server, admin) = Common();
        var reusable = new Option<bool>("--reusable") { Description = "Usable for any number of joins until it expires (default: one join)." };
        var ephemeral = new Option<bool>("--ephemeral") { Description = "Nodes joining with it are removed after being offline for the ephemeral timeout." };
        var expires = new Option<TimeSpan?>("--expires")
        {
            Description = "Lifetime, e.g. 1h, 30m, 7d or 01:00:00 (default: the coordinator's, 24 h).",
            CustomParser = r => ParseDuration(r.Tokens.Single().Value) ?? throw new CliException($"--expires: '{r.Tokens.Single().Value}' is not a duration (use e.g. 90s, 30m, 12h, 7d)", TunnelMeshCli.Usage),
        };
        var tags = new Option<string[]>("--tag") { Description = "A tag for joining nodes (tag:name); repeat for more.", AllowMultipleArgumentsPerToken = false };
        var description = new Option<string?>("--description") { Description = "Free text shown in the list." };
        var command = new Command("create", "Create an auth key and print it (the only time it is shown).") { server, admin, reusable, ephemeral, expires, tags, description };
        command.SetAction(async (parse, ct) =>
        {
            using var client = Client(parse.GetValue(server)!, parse.GetValue(admin)!);
            var options = new MeshAuthKeyOptions
            {
                Reusable = parse.GetValue(reusable),
                Ephemeral = parse.GetValue(ephemeral),
                ExpiresIn = parse.GetValue(expires),
                Tags = parse.GetValue(tags) is { Length: > 0 } t ? t : null,
                Description = parse.GetValue(description),
            };
            var created = await AdminAsync("creating the auth key", () => client.CreateAuthKeyAsync(options, ct)).ConfigureAwait(false);
            await stdout.WriteLineAsync(created.Key).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    private static Command List(TextWriter stdout)
    {
        var (server, admin) = Common();
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var command = new Command("list", "List auth keys (never their secrets).") { server, admin, json };
        command.SetAction(async (parse, ct) =>
        {
            using var client = Client(parse.GetValue(server)!, parse.GetValue(admin)!);
            var keys = await AdminAsync("listing auth keys", () => client.ListAuthKeysAsync(ct)).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await stdout.WriteLineAsync(System.Text.Json.JsonSerializer.Serialize(keys, TunnelMeshCli.Json)).ConfigureAwait(false);
                return 0;
            }

            await stdout.WriteLineAsync($"{"ID",-5} {"PREFIX",-18} {"KIND",-9} {"EPHEMERAL",-9} {"USES",5} {"EXPIRES",-20} {"STATE",-8} TAGS").ConfigureAwait(false);
            foreach (var k in keys)
            {
                string state = k.Revoked is not null ? "revoked" : k.Expires <= DateTimeOffset.UtcNow ? "expired" : "valid";
                await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"{k.Id,-5} {k.Prefix,-18} {(k.Reusable ? "reusable" : "one-shot"),-9} {(k.Ephemeral ? "yes" : "no"),-9} {k.Uses,5} {TunnelMeshCli.Format(k.Expires),-20} {state,-8} {string.Join(',', k.Tags)}")).ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    private static Command Revoke(TextWriter stdout)
    {
        var (server, admin) = Common();
        var id = new Argument<long>("id") { Description = "The key's id (first column of 'authkey list')." };
        var command = new Command("revoke", "Revoke an auth key: no further joins with it.") { id, server, admin };
        command.SetAction(async (parse, ct) =>
        {
            using var client = Client(parse.GetValue(server)!, parse.GetValue(admin)!);
            long keyId = parse.GetValue(id);
            await AdminAsync($"revoking auth key {keyId}", async () =>
            {
                await client.RevokeAuthKeyAsync(keyId, ct).ConfigureAwait(false);
                return keyId;
            }).ConfigureAwait(false);
            await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"revoked auth key {keyId}")).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    internal static MeshAdminClient Client(Uri server, string adminKey)
    {
        if (string.IsNullOrEmpty(adminKey))
        {
            throw new CliException("no admin credential: pass --admin-key or set TUNNELMESH_ADMIN_KEY", TunnelMeshCli.Usage);
        }

        if (server.Scheme is not ("http" or "https"))
        {
            throw new CliException($"--server: '{server}' is not an http or https URL", TunnelMeshCli.Usage);
        }

        try
        {
            return new MeshAdminClient(server, adminKey);
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message, TunnelMeshCli.Usage);
        }
    }

    /// <summary>Runs an admin call; a refusal becomes one line for the user: what, the status, the coordinator's reason.</summary>
    internal static async Task<T> AdminAsync<T>(string what, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (MeshAdminException e)
        {
            throw new CliException(string.Create(CultureInfo.InvariantCulture, $"{what}: {(int)e.StatusCode} {e.Title ?? e.StatusCode.ToString()}: {e.Reason}"));
        }
    }

    /// <summary>Parses 90s, 30m, 12h, 7d, or a TimeSpan (hh:mm:ss); null when neither.</summary>
    internal static TimeSpan? ParseDuration(string text)
    {
        text = text.Trim();
        if (text.Length >= 2 && double.TryParse(text[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out double n) && n > 0)
        {
            return char.ToLowerInvariant(text[^1]) switch
            {
                's' => TimeSpan.FromSeconds(n),
                'm' => TimeSpan.FromMinutes(n),
                'h' => TimeSpan.FromHours(n),
                'd' => TimeSpan.FromDays(n),
                _ => null,
            };
        }

        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var ts) && ts > TimeSpan.Zero ? ts : null;
    }
}
