using System.Text.RegularExpressions;
using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Samples.Tests.Paas;

/// <summary>Runs samples/PaasSdk (built by the solution build) as its own process to its end.</summary>
public sealed class PaasSdkSampleTests
{
    private static readonly TimeSpan RunLimit = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task The_PaaS_sample_enrolls_calls_and_removes_a_homelab_machine_and_exits_0()
    {
        string dll = SampleDll("PaasSdk");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

        ProcessRunner.Result run = await ProcessRunner.RunAsync(dotnet, [dll], RunLimit);

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

    /// <summary>samples/&lt;name&gt;/bin/&lt;configuration of this test&gt;/net10.0/&lt;name&gt;.dll under the folder holding TunnelMesh.Net.sln.</summary>
    internal static string SampleDll(string name)
    {
        var bin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string configuration = bin.Parent?.Name ?? "Release";
        string framework = bin.Name;
        DirectoryInfo? root = bin;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "TunnelMesh.Net.sln")))
        {
            root = root.Parent;
        }

        Assert.True(root is not null, $"no TunnelMesh.Net.sln above {AppContext.BaseDirectory}");
        string dll = Path.Combine(root.FullName, "samples", name, "bin", configuration, framework, name + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build the solution first (dotnet build TunnelMesh.Net.sln -c {configuration})");
        return dll;
    }
}
