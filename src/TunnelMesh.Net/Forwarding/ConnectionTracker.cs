using System.Collections.Concurrent;

namespace TunnelMesh.Net.Forwarding;

/// <summary>A connection a <see cref="ConnectionTracker"/> follows until it ends.</summary>
internal interface ITrackedConnection
{
    /// <summary>Completes when the connection has ended (both sides closed or reset).</summary>
    Task Completion { get; }
}

/// <summary>
/// The connections a listening service has open (the SOCKS5 proxy, the port forwarder): admission
/// against a limit with its counters, the token that tells every connection to stop, and the one stop
/// that closes the listener, waits for the accept loop, then for every connection to end.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "StopAsync, the owner's DisposeAsync, disposes the token source.")]
internal sealed class ConnectionTracker
{
    private readonly ConcurrentDictionary<ITrackedConnection, byte> _open = new();
    private readonly CancellationTokenSource _stopping = new();
    private Task? _stop;
    private long _accepted;
    private long _active;
    private long _rejected;

    /// <summary>Cancelled when the stop begins.</summary>
    public CancellationToken Stopping => _stopping.Token;

    /// <summary>Whether the stop has begun (the service is disposed).</summary>
    public bool IsStopped => Volatile.Read(ref _stop) is not null;

    public long Accepted => Interlocked.Read(ref _accepted);

    public long Active => Interlocked.Read(ref _active);

    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Counts an accepted connection; false, counted as rejected, when <paramref name="maxConnections"/> are open already.</summary>
    public bool TryAdmit(int maxConnections)
    {
        Interlocked.Increment(ref _accepted);
        if (Interlocked.Increment(ref _active) > maxConnections)
        {
            Interlocked.Decrement(ref _active);
            Interlocked.Increment(ref _rejected);
            return false;
        }

        return true;
    }

    /// <summary>Follows an admitted connection until <see cref="Release"/>.</summary>
    public void Add(ITrackedConnection connection) => _open.TryAdd(connection, 0);

    /// <summary>An admitted connection has ended.</summary>
    public void Release(ITrackedConnection connection)
    {
        _open.TryRemove(connection, out _);
        Interlocked.Decrement(ref _active);
    }

    /// <summary>
    /// Stops once (later calls share the first stop): cancels <see cref="Stopping"/>, closes the
    /// listener, waits for the accept loop, then for every open connection (each sees the token,
    /// resets both sides and releases itself), and finally runs <paramref name="stopped"/>.
    /// </summary>
    public ValueTask StopAsync(Func<ValueTask> closeListener, Func<Task?> acceptLoop, Action stopped)
    {
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task? existing = Interlocked.CompareExchange(ref _stop, stop.Task, null);
        return existing is not null ? new ValueTask(existing) : new ValueTask(StopCoreAsync(stop, closeListener, acceptLoop, stopped));
    }

    private async Task StopCoreAsync(TaskCompletionSource stop, Func<ValueTask> closeListener, Func<Task?> acceptLoop, Action stopped)
    {
        try
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            await closeListener().ConfigureAwait(false);
            if (acceptLoop() is { } loop)
            {
                await loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            // The accept loop has ended, so no connection is added any more.
            foreach (ITrackedConnection connection in _open.Keys)
            {
                await connection.Completion.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            _stopping.Dispose();
            stopped();
        }
        finally
        {
            stop.TrySetResult();
        }
    }
}
