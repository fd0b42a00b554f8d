namespace TunnelMesh.Net.Server.Stores;

/// <summary>
/// A one-shot event that re-arms itself: <see cref="Next"/> completes at the next <see cref="Notify"/>.
/// Waiters take <see cref="Next"/> before they read the state they wait on, so no change falls in between.
/// </summary>
internal sealed class ChangeSignal
{
    private TaskCompletionSource next = New();

    /// <summary>Completes at the next <see cref="Notify"/>.</summary>
    public Task Next => Volatile.Read(ref next).Task;

    /// <summary>Wakes everyone waiting on <see cref="Next"/> and re-arms.</summary>
    public void Notify() => Interlocked.Exchange(ref next, New()).TrySetResult();

    private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
