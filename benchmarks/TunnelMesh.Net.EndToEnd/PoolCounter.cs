using System.Diagnostics.Metrics;

namespace TunnelMesh.Net.EndToEnd;

/// <summary>
/// Reads the node's <c>tunnelmesh.buffers.allocated</c> instrument (packet buffers its pool has
/// allocated so far) through a <see cref="MeterListener"/>, so a window's allocation can be split
/// into pool growth (64 KiB pinned buffers, bounded) and everything else (which would be per packet).
/// </summary>
internal static class PoolCounter
{
    private static readonly object s_gate = new();
    private static MeterListener? s_listener;
    private static long s_value;
    private static long s_pooled;

    /// <summary>Buffers allocated by the pools of this process's nodes so far (0 before a node starts).</summary>
    public static long Read()
    {
        lock (s_gate)
        {
            s_listener ??= Start();
            s_value = 0;
            s_pooled = 0;
            s_listener.RecordObservableInstruments();
            return s_value;
        }
    }

    /// <summary>Buffers allocated so far and free buffers held now, read together.</summary>
    public static (long Created, long Pooled) ReadBoth()
    {
        lock (s_gate)
        {
            Read();
            return (s_value, s_pooled);
        }
    }

    private static MeterListener Start()
    {
        var listener = new MeterListener
        {
            InstrumentPublished = static (instrument, l) =>
            {
                if (instrument.Meter.Name == MeshNode.MeterName && instrument.Name is "tunnelmesh.buffers.allocated" or "tunnelmesh.buffers.pooled")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>(static (instrument, value, _, _) =>
        {
            if (instrument.Name == "tunnelmesh.buffers.allocated")
            {
                s_value += value;
            }
            else
            {
                s_pooled += value;
            }
        });
        listener.Start();
        return listener;
    }

    /// <summary>Prints the pool's state to standard error: buffers in use = allocated - free.</summary>
    public static void Print(string label)
    {
        var (created, pooled) = ReadBoth();
        Console.Error.WriteLine($"pool {label}: {created} buffers allocated, {pooled} free, {created - pooled} in use (posted receives, queued packets)");
    }
}
