using Xunit.Abstractions;
using Xunit.Sdk;

namespace TunnelMesh.Net.Server.Tests.Stores;

/// <summary>
/// A fact that needs a PostgreSQL server: the connection string comes from the environment variable
/// <c>TM_TEST_POSTGRES</c> (.ci/run starts a server and sets it). Without it the fact is skipped with
/// a reason on a developer machine, and runs (and fails, naming the variable) in CI, where CI=true.
/// On a test class it does the same for every <see cref="StoreFactAttribute"/> of the class.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class)]
public sealed class PostgresFactAttribute : FactAttribute
{
    public const string Variable = "TM_TEST_POSTGRES";

    public PostgresFactAttribute()
    {
        if (ConnectionString is null && Environment.GetEnvironmentVariable("CI") != "true")
        {
            Skip = $"needs PostgreSQL: set {Variable} to an Npgsql connection string (.ci/run starts one); runs in CI";
        }
    }

    /// <summary>The server to test against, or null.</summary>
    public static string? ConnectionString =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } s ? s : null;

    /// <summary>The connection string, or an exception that says how to get one.</summary>
    public static string RequireConnectionString() =>
        ConnectionString ?? throw new InvalidOperationException($"{Variable} is not set: the PostgreSQL store tests need a server (.ci/run starts one and sets it).");
}

/// <summary>
/// A fact of the store contract, declared once in <see cref="MeshStoreContractTests"/> and run for
/// each store's test class; skipped (with the class's reason) where that class carries a
/// <see cref="PostgresFactAttribute"/> that skips.
/// </summary>
[XunitTestCaseDiscoverer("TunnelMesh.Net.Server.Tests.Stores.StoreFactDiscoverer", "TunnelMesh.Net.Server.Tests")]
[AttributeUsage(AttributeTargets.Method)]
public sealed class StoreFactAttribute : FactAttribute;

/// <summary>Discovers <see cref="StoreFactAttribute"/> facts, taking the skip reason from the concrete test class.</summary>
public sealed class StoreFactDiscoverer(IMessageSink diagnosticMessageSink) : FactDiscoverer(diagnosticMessageSink)
{
    protected override IXunitTestCase CreateTestCase(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute)
    {
        string? skip = testMethod.TestClass.Class
            .GetCustomAttributes(typeof(PostgresFactAttribute).AssemblyQualifiedName)
            .Select(a => a.GetNamedArgument<string?>(nameof(FactAttribute.Skip)))
            .FirstOrDefault(s => s is not null);
        return skip is null
            ? base.CreateTestCase(discoveryOptions, testMethod, factAttribute)
            : new XunitSkippedDataRowTestCase(DiagnosticMessageSink, discoveryOptions.MethodDisplayOrDefault(), discoveryOptions.MethodDisplayOptionsOrDefault(), testMethod, skip);
    }
}
