namespace TunnelMesh.Net.Transport;

/// <summary>
/// Gathers the datagrams one thread sends during a unit of work (one received batch, one
/// application write) and hands them to their transport in one call at the end, so that the
/// transport's <c>sendmmsg</c> moves many datagrams per system call instead of one.
/// </summary>
/// <remarks>
/// <para>
/// Per thread and nestable: <see cref="Begin"/> opens a scope, <see cref="End"/> closes it, and
/// only the outermost <see cref="End"/> flushes. Outside a scope <see cref="TryAdd"/> declines and
/// the caller sends at once, so timers and other paths keep their behaviour.
/// </para>
/// <para>
/// The batch takes ownership of each datagram it accepts and returns it to its pool once sent,
/// so the data path neither copies nor rents for it. A full batch flushes early. Datagrams keep their order within a
/// thread; two threads sending for the same peer may interleave batches, which WireGuard's replay
/// window and TCP both tolerate.
/// </para>
/// </remarks>
internal sealed class TransmitBatch
{
    /// <summary>Datagrams gathered before an early flush (the transports' batch size).</summary>
    public const int Capacity = 64;

    [ThreadStatic]
    private static TransmitBatch? t_current;

    private readonly List<ITransmitBatchCompletion> _completions = [];
    private readonly PacketBuffer[] _packets = new PacketBuffer[Capacity];
    private readonly IDatagramTransport?[] _transports = new IDatagramTransport?[Capacity];
    private int _count;
    private int _depth;

    /// <summary>Opens a scope on this thread; pair with <see cref="End"/> in a <c>finally</c>.</summary>
    public static void Begin() => (t_current ??= new TransmitBatch())._depth++;

    /// <summary>Closes a scope; the outermost one sends what was gathered.</summary>
    public static void End()
    {
        var batch = t_current;
        if (batch is null || batch._depth == 0)
        {
            return;
        }

        if (batch._depth == 1)
        {
            // Still inside the scope, so what the completions send joins the batch.
            for (int i = 0; i < batch._completions.Count; i++)
            {
                try
                {
                    batch._completions[i].OnBatchEnd();
                }
#pragma warning disable CA1031 // one failing completion must not keep the batch from being sent
                catch (Exception)
#pragma warning restore CA1031
                {
                }
            }

            batch._completions.Clear();
        }

        if (--batch._depth == 0)
        {
            batch.Flush();
        }
    }

    /// <summary>
    /// Asks for <paramref name="completion"/> to run when this thread's outermost scope ends (before
    /// the batch is sent); false when no scope is open. The caller avoids registering twice.
    /// </summary>
    public static bool TryDefer(ITransmitBatchCompletion completion)
    {
        var batch = t_current;
        if (batch is null || batch._depth == 0)
        {
            return false;
        }

        batch._completions.Add(completion);
        return true;
    }

    /// <summary>
    /// Takes <paramref name="datagram"/> (with its endpoint) into the current scope's batch for
    /// <paramref name="transport"/>: the batch owns it from then on. False, datagram untouched,
    /// when no scope is open on this thread (send it now).
    /// </summary>
    public static bool TryAdd(IDatagramTransport transport, PacketBuffer datagram)
    {
        var batch = t_current;
        if (batch is null || batch._depth == 0)
        {
            return false;
        }

        batch._packets[batch._count] = datagram;
        batch._transports[batch._count] = transport;
        if (++batch._count == Capacity)
        {
            batch.Flush();
        }

        return true;
    }

    private void Flush()
    {
        int start = 0;
        try
        {
            // Consecutive datagrams for the same transport go in one call.
            for (int i = 1; i <= _count; i++)
            {
                if (i == _count || _transports[i] != _transports[start])
                {
                    _transports[start]!.Send(_packets.AsSpan(start, i - start));
                    start = i;
                }
            }
        }
        finally
        {
            for (int i = 0; i < _count; i++)
            {
                _packets[i].Return();
                _packets[i] = null!;
                _transports[i] = null;
            }

            _count = 0;
        }
    }
}

/// <summary>Work to do when a thread's <see cref="TransmitBatch"/> scope ends, such as the one ACK for a received batch.</summary>
internal interface ITransmitBatchCompletion
{
    /// <summary>Runs once, on the thread whose scope ends, before the batch is sent.</summary>
    void OnBatchEnd();
}
