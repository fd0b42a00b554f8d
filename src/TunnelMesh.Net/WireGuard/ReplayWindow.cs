namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// WireGuard's sliding replay window over transport-message counters (RFC 6479: a ring of 64-bit
/// words, advanced a word at a time, so moving the window never shifts bits). Same geometry as the
/// Linux kernel and wireguard-go: 128 words = 8192 bits, of which <see cref="WindowSize"/> = 8128
/// lie behind the highest counter seen (the word holding the highest counter is the 128th).
/// </summary>
/// <remarks>
/// Used by one receive thread per keypair: not thread-safe, and allocation-free after construction.
/// A counter is accepted when it is below <see cref="RejectAfterMessages"/>, not older than
/// <see cref="WindowSize"/> behind the highest accepted counter, and not accepted before.
/// </remarks>
internal sealed class ReplayWindow
{
    /// <summary>
    /// WireGuard's REJECT_AFTER_MESSAGES: 2^64 − 2^13 − 1. Counters at or above it are never accepted
    /// (the keypair must be renewed long before).
    /// </summary>
    public const ulong RejectAfterMessages = ProtocolConstants.RejectAfterMessages;

    private const int BitsPerWordLog = 6;
    private const int BitsPerWord = 1 << BitsPerWordLog;
    private const int RingWords = 128;
    private const ulong RingMask = RingWords - 1;
    private const ulong BitMask = BitsPerWord - 1;

    /// <summary>How far behind the highest accepted counter a counter may still be accepted (8128).</summary>
    public const ulong WindowSize = (RingWords - 1) * BitsPerWord;

    private readonly ulong[] _ring = new ulong[RingWords];
    private ulong _highest;

    /// <summary>The highest counter accepted since the last reset (0 initially).</summary>
    public ulong Highest => _highest;

    /// <summary>
    /// Returns true and records <paramref name="counter"/> if it is new and inside the window;
    /// false for a replay, a counter too old for the window, or one at or above
    /// <see cref="RejectAfterMessages"/>.
    /// </summary>
    public bool TryAccept(ulong counter)
    {
        if (counter >= RejectAfterMessages)
        {
            return false;
        }

        ulong word = counter >> BitsPerWordLog;
        if (counter > _highest)
        {
            // Move the window forward: clear every word between the old top word and the new one
            // (at most the whole ring, for a jump of 128 words or more).
            ulong current = _highest >> BitsPerWordLog;
            ulong advance = Math.Min(word - current, RingWords);
            for (ulong i = 1; i <= advance; i++)
            {
                _ring[(int)((current + i) & RingMask)] = 0;
            }

            _highest = counter;
        }
        else if (_highest - counter > WindowSize)
        {
            return false;
        }

        ref ulong slot = ref _ring[(int)(word & RingMask)];
        ulong bit = 1UL << (int)(counter & BitMask);
        if ((slot & bit) != 0)
        {
            return false;
        }

        slot |= bit;
        return true;
    }

    /// <summary>Forgets every counter (for a new keypair).</summary>
    public void Reset()
    {
        Array.Clear(_ring);
        _highest = 0;
    }
}
