using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Api;

/// <summary>
/// Removes ephemeral nodes that have been offline longer than
/// <see cref="MeshCoordinatorOptions.EphemeralTimeout"/>. Sweeps every quarter of the timeout
/// (clamped to between one second and one minute), on the injected <see cref="TimeProvider"/>.
/// </summary>
internal sealed class EphemeralNodeReaper : BackgroundService
{
    private readonly IMeshStore _store;
    private readonly TimeProvider _time;
    private readonly TimeSpan _timeout;
    private readonly ILogger _logger;

    public EphemeralNodeReaper(IMeshStore store, TimeProvider time, CoordinatorSettings settings, ILogger<EphemeralNodeReaper> logger)
    {
        _store = store;
        _time = time;
        _timeout = settings.Options.EphemeralTimeout;
        _logger = logger;
        Interval = TimeSpan.FromTicks(Math.Clamp(_timeout.Ticks / 4, TimeSpan.TicksPerSecond, TimeSpan.TicksPerMinute));
    }

    /// <summary>The time between sweeps.</summary>
    public TimeSpan Interval { get; }

    /// <summary>One sweep: deletes ephemeral nodes offline since before now minus the timeout.</summary>
    public async Task<int> SweepAsync(CancellationToken cancellationToken)
    {
        DateTimeOffset before = _time.GetUtcNow() - _timeout;
        int removed = await _store.DeleteEphemeralOfflineAsync(before, cancellationToken).ConfigureAwait(false);
        if (removed > 0)
        {
            Log.EphemeralRemoved(_logger, removed, before);
        }

        return removed;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    await SweepAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break;
                }
#pragma warning disable CA1031 // a store outage must not end the sweeps
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    Log.EphemeralSweepFailed(_logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }
}
