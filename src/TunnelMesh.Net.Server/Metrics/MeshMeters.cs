using TunnelMesh.Net.Forwarding;
using TunnelMesh.Net.Server.Relay;
using TunnelMesh.Net.Socks;

namespace TunnelMesh.Net.Server.Metrics;

/// <summary>
/// The names of every <see cref="System.Diagnostics.Metrics.Meter"/> TunnelMesh publishes on, for an
/// OpenTelemetry set-up of your own (docs/METRICS.md lists each instrument, its unit and tags):
/// <code>
/// services.AddOpenTelemetry().WithMetrics(m => m.AddMeter([.. MeshMeters.All]).AddPrometheusExporter());
/// app.MapPrometheusScrapingEndpoint();
/// </code>
/// or <c>services.AddMeshMetrics()</c> and <c>app.MapMeshMetrics()</c>, which do the same.
/// </summary>
public static class MeshMeters
{
    /// <summary>The node's meter (<see cref="MeshNode.MeterName"/>): drops, bytes and handshakes per peer, packet buffers.</summary>
    public const string Node = MeshNode.MeterName;

    /// <summary>The SOCKS5 proxy's meter (<see cref="MeshSocks5Server.MeterName"/>).</summary>
    public const string Socks5 = MeshSocks5Server.MeterName;

    /// <summary>The port forwarder's meter (<see cref="MeshPortForwarder.MeterName"/>).</summary>
    public const string Forwarding = MeshPortForwarder.MeterName;

    /// <summary>The coordinator's relay's meter (<see cref="RelayHub.MeterName"/>).</summary>
    public const string Relay = RelayHub.MeterName;

    /// <summary>The coordinator's meter: joins by result, map streams open, the map version, nodes in the map.</summary>
    public const string Coordinator = "TunnelMesh.Net.Server.Coordinator";

    /// <summary>All of the above.</summary>
    public static IReadOnlyList<string> All { get; } = [Node, Socks5, Forwarding, Relay, Coordinator];
}
