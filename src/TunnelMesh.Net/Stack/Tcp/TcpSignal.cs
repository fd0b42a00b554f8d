using System.Threading.Tasks.Sources;

namespace TunnelMesh.Net.Stack.Tcp;

/// <summary>
/// A reusable awaitable for one waiter at a time (the reader or the writer of a connection): no
/// allocation per wait. The owner calls <see cref="Reset"/> and sets a "waiting" flag under its
/// lock, releases the lock and awaits <see cref="WaitAsync"/>; whoever clears that flag under the
/// lock calls <see cref="Set"/> or <see cref="Fail"/> exactly once. Continuations always run on
/// the thread pool, so a packet-receiving thread never runs application code.
/// </summary>
internal sealed class TcpSignal : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };

    /// <summary>Prepares the next wait.</summary>
    public void Reset() => _core.Reset();

    /// <summary>The wait prepared by the last <see cref="Reset"/>.</summary>
    public ValueTask WaitAsync() => new(this, _core.Version);

    /// <summary>Completes the wait.</summary>
    public void Set() => _core.SetResult(true);

    /// <summary>Completes the wait with an exception.</summary>
    public void Fail(Exception exception) => _core.SetException(exception);

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
