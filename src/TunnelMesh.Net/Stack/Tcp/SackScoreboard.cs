#pragma warning disable CA1822
using TunnelMesh.Net.Wire;
namespace TunnelMesh.Net.Stack.Tcp;
/// <summary>TEMP</summary>
internal sealed class SackScoreboard
{
    /// <summary>TEMP</summary>
    public SackScoreboard(int maxRanges = 32) { _ = maxRanges; }
    /// <summary>TEMP</summary>
    public bool IsEmpty => true;
    /// <summary>TEMP</summary>
    public void Clear() { }
    /// <summary>TEMP</summary>
    public long Update(SeqNumber ack, ReadOnlySpan<SackBlock> blocks, SeqNumber sndNxt) => 0;
    /// <summary>TEMP</summary>
    public bool IsLost(SeqNumber seq, int mss) => false;
    /// <summary>TEMP</summary>
    public long Pipe(SeqNumber sndUna, SeqNumber sndNxt, SeqNumber highRxt, int mss) => sndNxt - sndUna;
    /// <summary>TEMP</summary>
    public bool TryNextSegment(SeqNumber sndUna, SeqNumber highRxt, int mss, bool allowNotLost, out SeqNumber start, out int length) { start = default; length = 0; return false; }
}
