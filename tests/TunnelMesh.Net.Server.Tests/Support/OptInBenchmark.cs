using Xunit.Abstractions;
using Xunit.Sdk;

namespace TunnelMesh.Net.Server.Tests.Support;

/// <summary>A benchmark written as a test method: it exists only when its environment variable is 1.</summary>
public interface IOptInBenchmark
{
    /// <summary>The environment variable that turns the benchmark on (value <c>1</c>).</summary>
    string Variable { get; }
}

/// <summary>
/// Discovers a benchmark method (its attribute implements <see cref="IOptInBenchmark"/>) only when its
/// variable is set, so the test suite neither runs it nor reports it as skipped: a benchmark is not a
/// check, and a skipped entry in CI's totals would look like a check that did not run.
/// </summary>
public sealed class OptInBenchmarkDiscoverer(IMessageSink diagnosticMessageSink) : IXunitTestCaseDiscoverer
{
    private readonly FactDiscoverer _fact = new(diagnosticMessageSink);

    public IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute) =>
        (factAttribute as IReflectionAttributeInfo)?.Attribute is IOptInBenchmark benchmark && Environment.GetEnvironmentVariable(benchmark.Variable) == "1"
            ? _fact.Discover(discoveryOptions, testMethod, factAttribute)
            : [];
}
