using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using System.Globalization;

namespace TunnelMesh.Net.HttpBench;

/// <summary>
/// <c>--alloc-trace</c>: the runtime's GCAllocationTick events (one each time about 100 KB has been allocated, naming
/// the type of the object that crossed the mark) collected while a measurement runs, grouped by type: what that
/// measurement's allocation was made of. Off by default: the listener allocates for every event, which the
/// allocation figures then include.
/// </summary>
internal sealed class AllocationTrace : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, long> _bytesByType = new();
    private volatile bool _collecting;

    public void Start()
    {
        _bytesByType.Clear();
        _collecting = true;
    }

    /// <summary>Stops collecting; the types seen, by bytes (sampled), largest first.</summary>
    public IReadOnlyList<(string Type, long Bytes)> Stop()
    {
        _collecting = false;
        return [.. _bytesByType.OrderByDescending(p => p.Value).Select(p => (p.Key, p.Value))];
    }

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (!_collecting || eventData.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) != true || eventData.PayloadNames is not { } names || eventData.Payload is not { } payload)
        {
            return;
        }

        int typeAt = names.IndexOf("TypeName");
        int amountAt = names.IndexOf("AllocationAmount64");
        int kindAt = names.IndexOf("AllocationKind");
        string kind = (kindAt >= 0 ? Convert.ToInt32(payload[kindAt], CultureInfo.InvariantCulture) : -1) switch
        {
            0 => "small",
            1 => "large",
            2 => "pinned",
            _ => "?",
        };
        string type = (typeAt >= 0 ? payload[typeAt]?.ToString() ?? "?" : "?") + $" ({kind} object heap)";
        long bytes = amountAt >= 0 ? Convert.ToInt64(payload[amountAt], CultureInfo.InvariantCulture) : 100_000;
        _bytesByType.AddOrUpdate(type, bytes, (_, old) => old + bytes);
    }
}
