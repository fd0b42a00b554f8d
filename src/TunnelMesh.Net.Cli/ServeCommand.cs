using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
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
        var stun = new Option<int[]>("--stun-port")
        {
            Description = "UDP port of the STUN responder (0: off); repeatable (default: 3478 and 3479: with two destinations `tunnelmesh netcheck` tells easy NATs from hard ones).",
            DefaultValueFactory = _ => [3478, 3479],
        };
        var stunAdvertise = new Option<string[]>("--stun-advertise")
        {
            Description = "host:port nodes should send STUN requests to; repeatable (default: the --listen host with each --stun-port; required when listening on all addresses).",
        };
        var metrics = new Option<bool>("--metrics")
        {
            Description = "Serve the coordinator's and relay's metrics for Prometheus at /metrics (no authentication: keep --listen private or filter the path).",
        };
        var replicaUrl = new Option<string?>("--replica-url")
        {
            Description = "With --postgres: the URL other replicas reach this one at (http://10.0.0.2:8080); replicas then forward relay frames to each other (needs --cluster-secret).",
        };
        var clusterSecret = new Option<string?>("--cluster-secret")
        {
            Description = "The secret replicas authenticate their links with (at least 32 characters, the same on every replica). Default with --replica-url: $TUNNELMESH_CLUSTER_SECRET.",
        };
        var command = new Command("serve", "Run a coordinator in the foreground (Ctrl-C stops it).") { listen, db, postgres, admin, prefix4, prefix6, suffix, stun, stunAdvertise, metrics, replicaUrl, clusterSecret };
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
            int[] stunPorts = parse.GetValue(stun) ?? [];
            if (stunPorts.Length > 1 && stunPorts.Contains(0))
            {
                throw new CliException("--stun-port 0 (off) cannot be combined with other STUN ports", TunnelMeshCli.Usage);
            }

            int stunPort = stunPorts.Length == 0 ? 0 : stunPorts[0];
            string[] given = parse.GetValue(stunAdvertise) ?? [];
            var advertisedAll = stunPort == 0 ? [] : given.Length > 0 ? given.ToList() : stunPorts.Select(p => AdvertisedStun(parse.GetValue(listen)!, p)).OfType<string>().ToList();
            string? advertised = advertisedAll.Count == 0 ? null : string.Join(", ", advertisedAll);
            builder.Services.AddMeshCoordinator(o =>
            {
                o.AdminCredential = adminKey;
                o.SqlitePath = parse.GetValue(db)!;
                o.PostgresConnectionString = parse.GetValue(postgres);
                o.Prefix4 = parse.GetValue(prefix4)!;
                o.Prefix6 = parse.GetValue(prefix6)!;
                o.DnsSuffix = parse.GetValue(suffix)!;
                o.ReplicaUrl = parse.GetValue(replicaUrl);
                o.ClusterSecret = parse.GetValue(clusterSecret)
                    ?? (o.ReplicaUrl is null ? null : Environment.GetEnvironmentVariable("TUNNELMESH_CLUSTER_SECRET") is { Length: > 0 } secret ? secret : null); // the variable alone makes no replica
                foreach (string a in advertisedAll)
                {
                    o.StunEndpoints.Add(a);
                }
            });
            if (stunPort != 0)
            {
                builder.Services.AddMeshStun(o =>
                {
                    o.Port = stunPort;
                    foreach (int extra in stunPorts.Skip(1))
                    {
                        o.AdditionalPorts.Add(extra);
                    }
                });
            }

            bool serveMetrics = parse.GetValue(metrics);
            if (serveMetrics)
            {
                builder.Services.AddMeshMetrics();
            }

            await using var app = builder.Build();
            app.UseWebSockets();
            app.MapMeshCoordinator();
            if (serveMetrics)
            {
                app.MapMeshMetrics();
            }

            await app.StartAsync(ct).ConfigureAwait(false);
            await stdout.WriteLineAsync($"coordinator listening on {string.Join(", ", app.Urls)}; STUN {(stunPort == 0 ? "off" : $"on UDP port {string.Join(", ", stunPorts)}, advertised as {advertised ?? "(nothing: pass --stun-advertise)"}")}").ConfigureAwait(false);
            if (serveMetrics)
            {
                await stdout.WriteLineAsync("Prometheus metrics at /metrics").ConfigureAwait(false);
            }

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

    /// <summary>The STUN endpoint to advertise from the first --listen URL: its host, unless that is a wildcard.</summary>
    internal static string? AdvertisedStun(string listen, int port)
    {
        string first = listen.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";
        if (!Uri.TryCreate(first.Replace("://*", "://wildcard", StringComparison.Ordinal).Replace("://+", "://wildcard", StringComparison.Ordinal), UriKind.Absolute, out var uri))
        {
            return null;
        }

        string host = uri.Host;
        if (host is "wildcard" or "0.0.0.0" or "[::]" or "::")
        {
            return null;
        }

        return host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? $"[{host}]:{port}" : $"{host}:{port}";
    }
}
