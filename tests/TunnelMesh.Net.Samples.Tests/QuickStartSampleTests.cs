using TunnelMesh.Net.Samples.Tests.Support;

namespace TunnelMesh.Net.Samples.Tests;

/// <summary>The README's main command: samples/QuickStart runs to its end as its own process and exits 0.</summary>
public sealed class QuickStartSampleTests
{
    [Fact]
    public async Task The_QuickStart_serves_on_alpha_calls_it_from_beta_and_through_socks5_on_gamma_and_exits_0()
    {
        var run = await SampleProcess.RunAsync("QuickStart", [], TimeSpan.FromMinutes(3));
        Assert.True(run.ExitCode == 0, $"QuickStart exited {run.ExitCode}:\n{run.All}");
        Assert.Equal("", run.Stderr);
        Assert.Contains("beta  -> GET http://alpha/hello: \"hello from alpha.tunnelmesh\", caller beta.tunnelmesh", run.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"SOCKS5 127\.0\.0\.1:\d+ on gamma -> GET http://alpha\.tunnelmesh/hello: caller gamma\.tunnelmesh", run.Stdout);
        Assert.Matches(@"beta  -> ping alpha: [\d.]+ ms via (Direct|Relay)", run.Stdout);
        Assert.EndsWith("QuickStart finished.", run.Stdout.TrimEnd(), StringComparison.Ordinal);
    }
}
