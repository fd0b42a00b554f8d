using Microsoft.Extensions.Hosting;

namespace TunnelMesh.Net.Hosting;

/// <summary>
/// Runs a service on a DI-registered node (the SOCKS5 proxy, a port forwarder) with the host: it is created and
/// started in StartAsync (the node started in StartingAsync, before it, and a node's options may depend on nodes
/// started before it, so nothing is resolved earlier) and disposed in StopAsync, or when the container is
/// disposed without the host having stopped (disposing twice is harmless).
/// </summary>
internal sealed class NodeServiceHostedService<T>(Func<T> create, Func<T, CancellationToken, Task> start) : IHostedService, IAsyncDisposable
    where T : class, IAsyncDisposable
{
    private T? _service;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _service = create();
        return start(_service, cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => DisposeAsync().AsTask();

    public ValueTask DisposeAsync() => _service?.DisposeAsync() ?? ValueTask.CompletedTask;
}
