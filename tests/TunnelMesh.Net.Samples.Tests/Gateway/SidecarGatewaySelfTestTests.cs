using TunnelMesh.Net.Tests.Support;

namespace TunnelMesh.Net.Samples.Tests.Gateway;

/// <summary>The sample as a user runs it: <c>dotnet SidecarGateway.dll --self-test</c> to the end, exit 0.</summary>
public sealed class SidecarGatewaySelfTestTests
{
    [Fact]
    public async Task The_sample_self_test_runs_to_its_end_and_exits_0()
    {
        string dll = FindSampleDll();
        var result = await ProcessRunner.RunAsync("dotnet", [dll, "--self-test"], TimeSpan.FromSeconds(240));
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.All}");
        Assert.Contains("self-test passed", result.Stdout);
        Assert.DoesNotContain("FAIL", result.Stdout);
        Assert.Contains("ok    WebSocket", result.Stdout);
    }

    /// <summary>The sample's dll: next to the tests (the project reference copies it), or in the sample's own bin folder.</summary>
    private static string FindSampleDll()
    {
        string here = Path.Combine(AppContext.BaseDirectory, "SidecarGateway.dll");
        if (File.Exists(here) && File.Exists(Path.Combine(AppContext.BaseDirectory, "SidecarGateway.runtimeconfig.json")))
        {
            return here;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "TunnelMesh.Net.sln")))
            {
                string configuration = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
                string candidate = Path.Combine(dir.FullName, "samples", "SidecarGateway", "bin", configuration, "net10.0", "SidecarGateway.dll");
                Assert.True(File.Exists(candidate), $"build the sample first: {candidate} is missing");
                return candidate;
            }
        }

        throw new FileNotFoundException("SidecarGateway.dll not found next to the tests nor under the repository root");
    }
}
