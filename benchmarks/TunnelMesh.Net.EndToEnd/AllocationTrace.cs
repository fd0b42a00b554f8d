using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using System.Globalization;

namespace TunnelMesh.Net.EndToEnd;

/// <summary>
/// With <c>TM_E2E_ALLOC_TRACE=1</c> in the environment, a child listens to the runtime's
/// GCAllocationTick events (one about every 100 KB allocated, naming the type of the object that
/// crossed the mark) during the steady-state window and prints them by type and kind to standard
/// error at the end: what the window's allocation was made of. Off by default, because the
/// listener allocates for each event it gets.
/// </summary>
internal sealed class AllocationTrace : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private static AllocationTrace? s_instance;
    private readonly ConcurrentDictionary<string, (long Ticks, long Bytes)> _byType = new();
    private volatile bool _armed;

    /// <summary>Whether the environment asks for the trace.</summary>
    public static bool Requested => Environment.GetEnvironmentVariable("TM_E2E_ALLOC_TRACE") == "1";

    /// <summary>Starts collecting (call when the steady window opens).</summary>
    public static void Arm()
    {
        if (Requested)
        {
            s_instance ??= new AllocationTrace();
            s_instance._armed = true;
        }
    }

    /// <summary>Stops collecting and prints what was seen under <paramref name="label"/>.</summary>
    public static void Report(string label)
    {
        if (s_instance is not { } trace)
        {
            return;
        }

        trace._armed = false;
        Console.Error.WriteLine($"alloc-trace {label}: GCAllocationTick events in the steady window (one per ~100 KB allocated):");
        foreach (var (type, (ticks, bytes)) in trace._byType.OrderByDescending(static p => p.Value.Bytes))
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"alloc-trace {label}:   {ticks,5} ticks {bytes / 1024.0,10:F0} KiB  {type}"));
        }

        if (trace._byType.IsEmpty)
        {
            Console.Error.WriteLine($"alloc-trace {label}:   none");
        }

        trace._byType.Clear();
    }

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (!_armed || e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null || e.PayloadNames is null)
        {
            return;
        }

        string type = Field(e, "TypeName")?.ToString() ?? "?";
        string kind = Field(e, "AllocationKind") switch
        {
            0u or 0 => "small",
            1u or 1 => "large",
            2u or 2 => "pinned",
            var k => k?.ToString() ?? "?",
        };
        long bytes = Convert.ToInt64(Field(e, "AllocationAmount64") ?? Field(e, "AllocationAmount") ?? 0L, CultureInfo.InvariantCulture);
        _byType.AddOrUpdate($"{type} ({kind} heap)", (1, bytes), (_, old) => (old.Ticks + 1, old.Bytes + bytes));
    }

    private static object? Field(EventWrittenEventArgs e, string name)
    {
        int i = e.PayloadNames!.IndexOf(name);
        return i >= 0 ? e.Payload![i] : null;
    }
}
