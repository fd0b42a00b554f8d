using System.Text.RegularExpressions;
using TunnelMesh.Net.Samples.Tests.Support;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Samples.Tests.Paas;

/// <summary>Runs samples/PaasSdk (built by the solution build) as its own process to its end.</summary>
public sealed class PaasSdkSampleTests
{
    private static readonly TimeSpan RunLimit = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task The_PaaS_sample_enrolls_calls_and_removes_a_homelab_machine_and_exits_0()
    {
        ProcessRunner.Result run = await SampleProcess.RunAsync("PaasSdk", [], RunLimit);

        Assert.True(run.ExitCode == 0, $"PaasSdk exited {run.ExitCode}:\n{run.All}");
        Assert.Equal("", run.Stderr);
        string output = run.Stdout;
        Assert.Matches(@"\[1\] coordinator on http://127\.0\.0\.1:\d+/", output);
        Assert.Matches(@"\[2\] paas joined as paas\.tunnelmesh \(100\.64\.0\.\d+\) with a reusable key tagged tag:paas", output);
        Assert.Matches(@"\[3\] enrolled homelab-42 of customer-42 \(key \d+\): one-shot=True ephemeral=True tags=tag:customer-42 key tmkey-\d+-…", output);
        Assert.Matches(@"\[4\] homelab-42 joined \(100\.64\.0\.\d+\), serving HTTP on 100\.64\.0\.\d+:8080", output);
        Assert.Matches(@"\[5\] homelab-42 is online: node \d+, .*ephemeral=True, tags=tag:customer-42", output);
        Assert.Contains("homelab-42 service: GET /status HTTP/1.1 from paas (tag:paas) -> 200", output, StringComparison.Ordinal);
        Assert.Contains("[6] homelab-42 answered: hello from homelab-42, customer-42's homelab machine; you are paas [tag:paas]", output, StringComparison.Ordinal);
        Assert.Matches(@"\[7\] removed homelab-42 \(node \d+\); the coordinator no longer lists it and paas no longer sees it \(0 peers\)", output);
        Assert.Contains("[8] joining again with the same key was refused (HTTP 403): auth key already used (one-shot).", output, StringComparison.Ordinal);
        Assert.EndsWith("PaasSdk finished.", output.TrimEnd(), StringComparison.Ordinal);

        // The whole key is never printed, only its prefix; the temporary folder is gone.
        Assert.DoesNotMatch(@"tmkey-\d+-[0-9a-fA-F]{16}", output);
        string folder = Regex.Match(output, @"SQLite in (\S+)\)").Groups[1].Value;
        Assert.NotEqual("", folder);
        Assert.False(Directory.Exists(folder), $"the sample left {folder} behind");
    }
}
