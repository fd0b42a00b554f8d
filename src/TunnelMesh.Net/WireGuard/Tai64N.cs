using System.Buffers.Binary;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// A TAI64N timestamp (12 bytes: 8 seconds, 4 nanoseconds, big-endian), as in handshake initiations.
/// The seconds are 2^62 + Unix seconds (leap seconds ignored, as wireguard-go does). Nanoseconds are
/// rounded down to a multiple of 2^24 ns (~16.8 ms) when made from a clock, so the exact time of an
/// initiation does not leak ("whitening", as in wireguard-go's <c>tai64n</c>).
/// </summary>
internal readonly struct Tai64N : IComparable<Tai64N>, IEquatable<Tai64N>
{
    /// <summary>Size on the wire.</summary>
    public const int Size = 12;

    private const ulong Base = 1UL << 62;
    private const uint WhitenerMask = (1u << 24) - 1;

    private readonly ulong _seconds;
    private readonly uint _nanoseconds;

    private Tai64N(ulong seconds, uint nanoseconds)
    {
        _seconds = seconds;
        _nanoseconds = nanoseconds;
    }

    /// <summary>The TAI64 seconds label (2^62 + Unix seconds).</summary>
    public ulong Seconds => _seconds;

    /// <summary>The nanoseconds.</summary>
    public uint Nanoseconds => _nanoseconds;

    /// <summary>The whitened timestamp of <paramref name="time"/>.</summary>
    public static Tai64N FromDateTimeOffset(DateTimeOffset time)
    {
        long unixTicks = time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        long seconds = Math.DivRem(unixTicks, TimeSpan.TicksPerSecond, out long ticks);
        if (ticks < 0)
        {
            seconds--;
            ticks += TimeSpan.TicksPerSecond;
        }

        uint nanoseconds = (uint)(ticks * 100) & ~WhitenerMask;
        return new Tai64N(unchecked(Base + (ulong)seconds), nanoseconds);
    }

    /// <summary>Reads 12 bytes.</summary>
    public static Tai64N Read(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadUInt64BigEndian(source), BinaryPrimitives.ReadUInt32BigEndian(source[8..Size]));

    /// <summary>Writes 12 bytes.</summary>
    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _seconds);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..Size], _nanoseconds);
    }

    /// <inheritdoc/>
    public int CompareTo(Tai64N other)
    {
        int c = _seconds.CompareTo(other._seconds);
        return c != 0 ? c : _nanoseconds.CompareTo(other._nanoseconds);
    }

    /// <inheritdoc/>
    public bool Equals(Tai64N other) => _seconds == other._seconds && _nanoseconds == other._nanoseconds;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Tai64N other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(_seconds, _nanoseconds);

    /// <inheritdoc/>
    public override string ToString() => $"tai64n:{_seconds:x16}{_nanoseconds:x8}";

    /// <summary>Equality.</summary>
    public static bool operator ==(Tai64N left, Tai64N right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(Tai64N left, Tai64N right) => !left.Equals(right);

    /// <summary>Earlier than.</summary>
    public static bool operator <(Tai64N left, Tai64N right) => left.CompareTo(right) < 0;

    /// <summary>Later than.</summary>
    public static bool operator >(Tai64N left, Tai64N right) => left.CompareTo(right) > 0;

    /// <summary>Not later than.</summary>
    public static bool operator <=(Tai64N left, Tai64N right) => left.CompareTo(right) <= 0;

    /// <summary>Not earlier than.</summary>
    public static bool operator >=(Tai64N left, Tai64N right) => left.CompareTo(right) >= 0;
}
