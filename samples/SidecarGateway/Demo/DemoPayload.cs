using System.Buffers.Binary;

namespace SidecarGateway.Demo;

/// <summary>
/// A deterministic byte stream of any length, generated piece by piece (never held whole): byte
/// <c>i</c> is a function of <c>i</c> and the seed only, so a receiver can check what it got by
/// generating the same bytes.
/// </summary>
public static class DemoPayload
{
    /// <summary>Fills <paramref name="destination"/> with the bytes at <paramref name="offset"/>, <paramref name="offset"/>+1, … of the stream.</summary>
    public static void Fill(Span<byte> destination, long offset, ulong seed = 0)
    {
        Span<byte> word = stackalloc byte[8];
        long index = offset >> 3;
        int skip = (int)(offset & 7);
        BinaryPrimitives.WriteUInt64LittleEndian(word, Mix(seed, (ulong)index));
        int i = 0;
        while (i < destination.Length)
        {
            if (skip == 8)
            {
                index++;
                skip = 0;
                if (destination.Length - i >= 8)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(destination[i..], Mix(seed, (ulong)index));
                    i += 8;
                    skip = 8;
                    continue;
                }

                BinaryPrimitives.WriteUInt64LittleEndian(word, Mix(seed, (ulong)index));
            }

            destination[i++] = word[skip++];
        }
    }

    /// <summary>SplitMix64 of the word index (and seed).</summary>
    private static ulong Mix(ulong seed, ulong index)
    {
        ulong z = (index + seed * 0x632BE59BD9B4E019UL) * 0x9E3779B97F4A7C15UL + 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
