using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace TunnelMesh.Net.Hosting;

/// <summary>
/// Owns one DI-registered <see cref="MeshNode"/>: creates it from the named options, starts it once
/// (whoever asks first: the host, or a Kestrel listener binding before the host got to it), and
/// disposes it when the host stops.
/// </summary>
internal sealed class MeshNodeRunner : IAsyncDisposable
{
    private readonly IOptionsMonitor<MeshNodeOptions> _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly Lock _gate = new();
    private MeshNode? _node;
    private Task? _start;
    private CancellationTokenSource? _startCancellation;
    private bool _stopped;

    public MeshNodeRunner(string name, IOptionsMonitor<MeshNodeOptions> options, ILoggerFactory loggerFactory)
    {
        Name = name;
        _options = options;
        _loggerFactory = loggerFactory;
    }

    /// <summary>The registration's name ("" for the unnamed node).</summary>
    public string Name { get; }

    /// <summary>The node (created on first use from the options; not started by this).</summary>
    /// <exception cref="MeshConfigurationException">The configuration section had a bad value.</exception>
    public MeshNode Node
    {
        get
        {
            lock (_gate)
            {
                return _node ??= new MeshNode(_options.Get(Name), _loggerFactory);
            }
        }
    }

    /// <summary>Whether start completed successfully and the node has not been stopped.</summary>
    public bool Started => _start is { IsCompletedSuccessfully: true } && !_stopped;

    /// <summary>The start's failure, if it failed.</summary>
    public Exception? StartFailure => _start is { IsFaulted: true } s ? s.Exception!.InnerException : null;

    /// <summary>Starts the node unless that already happened or is under way; every caller awaits the same start.</summary>
    public Task EnsureStartedAsync(CancellationToken cancellationToken)
    {
        Task start;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopped, this);
            if (_start is null)
            {
                _startCancellation = new CancellationTokenSource();
                _start = StartCoreAsync(_startCancellation.Token);
            }

            start = _start;
        }

        return start.WaitAsync(cancellationToken);
    }

    private async Task StartCoreAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        var logger = _loggerFactory.CreateLogger<MeshNodeRunner>();
        try
        {
            await Node.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is MeshConfigurationException or MeshControlException)
        {
            HostingLog.StartFailed(logger, Label, ex.Message);
            throw;
        }
    }

    private string Label => Name.Length == 0 ? "(default)" : Name;

    /// <summary>Stops the node (cancels a start under way, then disposes it). Safe twice.</summary>
    public async ValueTask DisposeAsync()
    {
        Task? start;
        MeshNode? node;
        lock (_gate)
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
            start = _start;
            node = _node;
        }

        if (_startCancellation is not null)
        {
            await _startCancellation.CancelAsync().ConfigureAwait(false);
        }

        if (start is not null)
        {
            await start.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (node is not null)
        {
            await node.DisposeAsync().ConfigureAwait(false);
        }

        _startCancellation?.Dispose();
    }
}

/// <summary>
/// Starts a registered node with the host and stops it with the host: it starts in
/// <see cref="StartingAsync"/>, before any hosted service's StartAsync (so a web server finds it running
/// when it binds mesh listeners), and stops in <see cref="StoppedAsync"/>, after every StopAsync (so a
/// server drains its mesh connections while the node still carries them).
/// </summary>
internal sealed class MeshNodeHostedService(MeshNodeRunner runner) : Microsoft.Extensions.Hosting.IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => runner.EnsureStartedAsync(cancellationToken);

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => runner.DisposeAsync().AsTask();
}

/// <summary>Source-generated log messages of the generic-host integration.</summary>
internal static partial class HostingLog
{
    [LoggerMessage(1, LogLevel.Error, "Mesh node {Node} did not start: {Reason}")]
    public static partial void StartFailed(ILogger logger, string node, string reason);
}
