using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Server;

namespace TunnelMesh.Net.Cli;

/// <summary><c>tunnelmesh serve</c>: a coordinator (API, peer map, relay, STUN) with the SQLite store.</summary>
internal static class ServeCommand
{
    public static Command Create(TextWriter stdout)
    {
        var listen = new Option<string>("--listen")
        {
            Description = "The URL(s) Kestrel listens on, separated by ';' (put it behind HTTPS in production).",
            DefaultValueFactory = _ => "http://127.0.0.1:8080",
        };
        var db = new Option<string>("--db")
        {
            Description = "The SQLite database file (created if missing).",
            DefaultValueFactory = _ => "tunnelmesh.db",
        };
        var postgres = new Option<string?>("--postgres")
        {
            Description = "A PostgreSQL connection string: use PostgreSQL instead of SQLite (several replicas behind one load balancer).",
        };
        var admin = new Option<string>("--admin-key")
        {
            Description = "The admin credential (at least 16 characters). Default: $TUNNELMESH_ADMIN_KEY.",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TUNNELMESH_ADMIN_KEY") ?? "",
        };
        var prefix4 = new Option<string>("--prefix4") { Description = "The IPv4 mesh prefix.", DefaultValueFactory = _ => "100.64.0.0/10" };
        var prefix6 = new Option<string>("--prefix6") { Description = "The IPv6 (ULA) mesh prefix.", DefaultValueFactory = _ => "fd74:6d65:7368::/48" };
        var suffix = new Option<string>("--dns-suffix") { Description = "The DNS suffix of mesh names.", DefaultValueFactory = _ => "tunnelmesh" };
        var stun = new Option<int>("--stun-port") { Description = "UDP port of the STUN responder (0: off).", DefaultValueFactory = _ => 3478 };
        var command = new Command("serve", "Run a coordinator in the foreground (Ctrl-C stops it).") { listen, db, postgres, admin, prefix4, prefix6, suffix, stun };
        command.SetAction(async (parse, ct) =>
        {
            string adminKey = parse.GetValue(admin)!;
            if (string.IsNullOrEmpty(adminKey))
            {
                throw new CliException("no admin credential: pass --admin-key or set TUNNELMESH_ADMIN_KEY", TunnelMeshCli.Usage);
            }

            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
            builder.WebHost.UseUrls(parse.GetValue(listen)!);
            int stunPort = parse.GetValue(stun);
            builder.Services.AddMeshCoordinator(o =>
            {
                o.AdminCredential = adminKey;
                o.SqlitePath = parse.GetValue(db)!;
                o.PostgresConnectionString = parse.GetValue(postgres);
                o.Prefix4 = parse.GetValue(prefix4)!;
                o.Prefix6 = parse.GetValue(prefix6)!;
                o.DnsSuffix = parse.GetValue(suffix)!;
            });
            await using var app = builder.Build();
            app.UseWebSockets();
            app.MapMeshCoordinator();
            await app.StartAsync(ct).ConfigureAwait(false);
            await stdout.WriteLineAsync($"coordinator listening on {string.Join(", ", app.Urls)}").ConfigureAwait(false);
            try
            {
                await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
