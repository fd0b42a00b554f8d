using System.Text;
using System.Text.RegularExpressions;
using TunnelMesh.Net.Cli;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Cli;

/// <summary>
/// The tunnelmesh command, run in process (the same entry as the tool): a coordinator with
/// <c>serve</c>, keys with <c>authkey</c>, two nodes with <c>join</c>, then <c>status</c>,
/// <c>peers</c> and <c>ping</c> against their local APIs. Everything binds 127.0.0.1.
/// </summary>
public sealed partial class CliTests
{
    private const string Admin = "cli-test-admin-credential-0123456789";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Serve_authkey_join_status_peers_and_ping_work_together()
    {
        string dir = Directory.CreateTempSubdirectory("tmcli").FullName;
        using var stop = new CancellationTokenSource();
        var running = new List<Task<int>>();
        try
        {
            var serveOut = new SyncWriter();
            running.Add(Task.Run(() => TunnelMeshCli.RunAsync(["serve", "--listen", "http://127.0.0.1:0", "--db", Path.Combine(dir, "c.db"), "--admin-key", Admin, "--stun-port", "0"], serveOut, serveOut, stop.Token)));
            string url = (await Until(() => ListeningUrl().Match(serveOut.Text) is { Success: true } m ? m.Groups[1].Value : null, "serve prints its URL", running))!;

            var (rc, key, _) = await Run("authkey", "create", "--server", url, "--admin-key", Admin, "--reusable", "--tag", "tag:test");
            Assert.Equal(0, rc);
            Assert.Matches("^tmkey-1-[0-9a-f]{64}$", key.Trim());

            var (rcList, list, _) = await Run("authkey", "list", "--server", url, "--admin-key", Admin);
            Assert.Equal(0, rcList);
            Assert.Contains("reusable", list);
            Assert.Contains("tag:test", list);
            Assert.DoesNotContain(key.Trim(), list); // the secret is never listed

            foreach (string name in new[] { "alpha", "beta" })
            {
                var w = new SyncWriter();
                string state = Path.Combine(dir, name);
                // Pinned to loopback: on the default ([::]) a node publishes this machine's interface addresses and
                // probes them, and test traffic stays on loopback. The default socket itself is covered by
                // WireGuardGoInteropTests.A_node_on_default_options_answers_wireguard_go_over_IPv4_and_over_IPv6.
                running.Add(Task.Run(() => TunnelMeshCli.RunAsync(["join", "--server", url, "--auth-key", key.Trim(), "--hostname", name, "--state-dir", state, "--listen-address", "127.0.0.1"], w, w, stop.Token)));
                await Until(() => File.Exists(Path.Combine(state, LocalApiClient.SocketName)) ? "" : null, $"{name} serves its local API", running);
            }

            string a = Path.Combine(dir, "alpha");
            var (rcStatus, status, _) = await Run("status", "--state-dir", a);
            Assert.Equal(0, rcStatus);
            Assert.Contains("alpha.tunnelmesh", status);
            Assert.Contains("100.64.0.", status);

            await Until(async () => (await Run("peers", "--state-dir", a)).Out is var o && o.Contains("beta.tunnelmesh", StringComparison.Ordinal) ? o : null, "alpha lists beta");

            var (rcPing, ping, pingErr) = await Run("ping", "beta", "--state-dir", a, "--count", "2");
            Assert.True(rcPing == 0, pingErr);
            Assert.Matches(@"pong from beta \(100\.64\.0\.\d+\) via (direct|relay) in \d+\.\d\d ms", ping);

            // Two nodes on one machine leave the relay for a direct path.
            await Until(async () => (await Run("peers", "--state-dir", a)).Out is var o && o.Contains("beta.tunnelmesh", StringComparison.Ordinal) && o.Contains(" direct ", StringComparison.Ordinal) ? o : null, "alpha reaches beta on a direct path");

            // The path's kind, the candidates tried and the last probe: beta announced its interface address (loopback here) as local.
            string peers = (await Until(async () => (await Run("peers", "--state-dir", a)).Out is var o && o.Contains("direct-lan", StringComparison.Ordinal) ? o : null, "alpha sees beta on its LAN address"))!;
            Assert.Matches(@"candidates: 127\.0\.0\.1:\d+ local (\d+\.\d\d ms|no answer|not tried)", peers);
            var (_, paths, _) = await Run("status", "--state-dir", a);
            Assert.Matches(@"beta\.tunnelmesh: direct-lan 127\.0\.0\.1:\d+; last probe ", paths);
            var (_, json, _) = await Run("peers", "--state-dir", a, "--json");
            using (var doc = System.Text.Json.JsonDocument.Parse(json))
            {
                var beta = doc.RootElement.EnumerateArray().Single(p => p.GetProperty("name").GetString() == "beta");
                Assert.Equal("direct-lan", beta.GetProperty("pathKind").GetString());
                Assert.Contains(beta.GetProperty("candidates").EnumerateArray(), c => c.GetProperty("kind").GetString() == "local");
                Assert.Contains(beta.GetProperty("lastProbe").ValueKind, new[] { System.Text.Json.JsonValueKind.Object, System.Text.Json.JsonValueKind.Null }); // null when no ping was needed
            }

            // Failures: one line on stderr, non-zero exit.
            var (rcNobody, _, nobodyErr) = await Run("ping", "nobody", "--state-dir", a);
            Assert.Equal(1, rcNobody);
            Assert.Equal("tunnelmesh: error: 404 Not Found: no peer named 'nobody' in the mesh", nobodyErr.Trim());

            var (rcWrong, _, wrongErr) = await Run("authkey", "list", "--server", url, "--admin-key", "not-the-admin-credential");
            Assert.Equal(1, rcWrong);
            Assert.Single(wrongErr.Trim().Split('\n'));
            Assert.StartsWith("tunnelmesh: error: listing auth keys: 401", wrongErr.Trim());

            var (rcRevoke, revoked, _) = await Run("authkey", "revoke", "1", "--server", url, "--admin-key", Admin);
            Assert.Equal(0, rcRevoke);
            Assert.Contains("revoked auth key 1", revoked);
            var (rcJoin, _, joinErr) = await Run("join", "--server", url, "--auth-key", key.Trim(), "--hostname", "gamma", "--state-dir", Path.Combine(dir, "gamma"));
            Assert.Equal(1, rcJoin);
            Assert.Contains("revoked", joinErr);
            Assert.Single(joinErr.Trim().Split('\n'));
        }
        finally
        {
            await stop.CancelAsync();
            foreach (var t in running)
            {
                Assert.Equal(0, await t.WaitAsync(TimeSpan.FromSeconds(30)));
            }

            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("serve")]
    [InlineData("authkey")]
    [InlineData("authkey create")]
    [InlineData("authkey list")]
    [InlineData("authkey revoke")]
    [InlineData("join")]
    [InlineData("status")]
    [InlineData("peers")]
    [InlineData("ping")]
    [InlineData("netcheck")]
    public async Task Every_command_has_help(string command)
    {
        var (rc, output, _) = await Run([.. command.Split(' '), "--help"]);
        Assert.Equal(0, rc);
        Assert.Contains("Usage:", output);
        Assert.Contains(command.Split(' ')[^1], output);
    }

    [Theory]
    [InlineData("frob")]
    [InlineData("authkey create --server not-a-url --admin-key x")]
    [InlineData("ping")]
    [InlineData("ping x --count 500")]
    [InlineData("join --auth-key k")]
    public async Task Bad_usage_is_one_line_and_exit_code_2(string args)
    {
        var (rc, _, error) = await Run(args.Split(' '));
        Assert.Equal(2, rc);
        Assert.Single(error.Trim().Split('\n'));
        Assert.StartsWith("tunnelmesh: error: ", error);
    }

    [Fact]
    public async Task Status_without_a_running_node_says_so()
    {
        string dir = Directory.CreateTempSubdirectory("tmcli").FullName;
        try
        {
            var (rc, _, error) = await Run("status", "--state-dir", dir);
            Assert.Equal(1, rc);
            Assert.Contains("no node is running", error);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new SyncWriter();
        var stderr = new SyncWriter();
        using var timeout = new CancellationTokenSource(Deadline);
        int rc = await TunnelMeshCli.RunAsync(args, stdout, stderr, timeout.Token);
        return (rc, stdout.Text, stderr.Text);
    }

    private static Task<string?> Until(Func<string?> probe, string what, IReadOnlyList<Task<int>>? running = null) =>
        Until(() => Task.FromResult(probe()), what, running);

    private static async Task<string?> Until(Func<Task<string?>> probe, string what, IReadOnlyList<Task<int>>? running = null)
    {
        DateTime until = DateTime.UtcNow + Deadline;
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            if (running?.FirstOrDefault(t => t.IsCompleted) is { } ended)
            {
                Assert.Fail($"waiting for '{what}': a command ended early with exit code {await ended}");
            }

            Assert.True(DateTime.UtcNow < until, $"timed out waiting for: {what}");
            await Task.Delay(25);
        }
    }

    [GeneratedRegex(@"coordinator listening on (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningUrl();
}
