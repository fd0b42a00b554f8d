namespace TunnelMesh.Net.Samples.Tests;

/// <summary>Placeholder so the project has a test while the sample tests are written.</summary>
public sealed class SamplesBuiltTests
{
    [Fact]
    public void The_sample_assemblies_are_referenced() =>
        Assert.NotNull(typeof(SamplesBuiltTests).Assembly.GetReferencedAssemblies());
}
