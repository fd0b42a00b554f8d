namespace TunnelMesh.Net.Server.Metrics;

/// <summary>Marks that <c>AddMeshMetrics</c> ran, so a second call adds nothing and <c>MapMeshMetrics</c> can check for it.</summary>
internal sealed class MeshMetricsMarker;
