using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace TunnelMesh.Net.Hosting;

/// <summary>
/// Reports a DI-registered node's state: Healthy when it runs (and, in control mode, holds the
/// coordinator's peer map stream); Degraded when it runs but the coordinator is out of reach (data to
/// known peers still flows, changes do not arrive); Unhealthy before start, after a failed start and
/// after stop.
/// </summary>
internal sealed class MeshNodeHealthCheck(MeshNodeRunner runner) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (runner.StartFailure is { } failure)
        {
            return Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus, "The mesh node failed to start: " + failure.Message));
        }

        if (!runner.Started || !runner.Node.IsRunning)
        {
            return Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus, "The mesh node is not running."));
        }

        var node = runner.Node;
        var status = node.GetStatus();
        var data = new Dictionary<string, object>
        {
            ["address"] = node.Address.ToString(),
            ["publicKey"] = status.Self.PublicKey.ToString(),
            ["peers"] = status.Peers.Count,
            ["peersOnline"] = status.Peers.Count(p => p.Online),
            ["controlConnected"] = status.ControlConnected,
            ["mapVersion"] = status.MapVersion,
        };
        if (status.Self.Fqdn is { } fqdn)
        {
            data["name"] = fqdn;
        }

        bool controlMode = node.Control is not null;
        if (controlMode && !status.ControlConnected)
        {
            return Task.FromResult(HealthCheckResult.Degraded("The mesh node runs but is not connected to the coordinator (known peers stay reachable; changes do not arrive).", data: data));
        }

        return Task.FromResult(HealthCheckResult.Healthy(controlMode ? $"Running as {status.Self.Fqdn} at {node.Address}, connected to the coordinator." : $"Running at {node.Address}.", data));
    }
}
