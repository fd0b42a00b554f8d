namespace TunnelMesh.Net.Server.Tests.Metrics;

/// <summary>
/// The metrics tests run alone: an OpenTelemetry meter provider listens to every meter of a name in the
/// process, so coordinators and nodes of tests running beside them would add to the figures asserted.
/// </summary>
[CollectionDefinition(nameof(MetricsCollection), DisableParallelization = true)]
public sealed class MetricsCollection;
