using TunnelMesh.Net.Samples.Tests.Support;

namespace TunnelMesh.Net.Samples.Tests.Gateway;

/// <summary>The sample as a user runs it: <c>dotnet SidecarGateway.dll --self-test</c> to the end, exit 0.</summary>
public sealed class SidecarGatewaySelfTestTests
{
    [Fact]
    public async Task The_sample_self_test_runs_to_its_end_and_exits_0()
    {
        var result = await SampleProcess.RunAsync("SidecarGateway", ["--self-test"], TimeSpan.FromSeconds(240));
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}:\n{result.All}");
        Assert.Contains("self-test passed", result.Stdout);
        Assert.DoesNotContain("FAIL", result.Stdout);
        Assert.Contains("ok    WebSocket", result.Stdout);
    }
}
