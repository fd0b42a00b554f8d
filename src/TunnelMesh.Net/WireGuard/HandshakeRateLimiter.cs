using System.Runtime.InteropServices;
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.WireGuard;

/// <summary>
/// Per-source token bucket for handshake messages under load, after wireguard-go's
/// <c>ratelimiter</c>: <see cref="PacketsPerSecond"/> per source with a burst of
/// <see cref="Burst"/>. IPv4 sources are bucketed by address, IPv6 sources by their /64 (one host
/// usually owns a whole /64). The port is ignored.
/// </summary>
/// <remarks>
/// <para>
/// A bucket holds up to <see cref="Burst"/> packets' worth of time, refills at
/// <see cref="PacketsPerSecond"/>, and a packet passes when a whole packet's worth is left. (wireguard-go
/// compares with <c>&gt;</c> and so lets 4 through in a burst; this lets exactly 5 through.)
/// Time comes from the injected <see cref="TimeProvider"/>'s timestamp.
/// </para>
/// <para>
/// Memory is bounded: a bucket idle for <see cref="EntryLifetime"/> is full again, so it is forgotten
/// (swept at most once per <see cref="EntryLifetime"/>, on a call); the table holds at most
/// <c>maxEntries</c> sources, and when it is full of active sources a new source is refused, as the
/// Linux kernel does. Thread-safe: one short lock per call, which is cheap next to the Curve25519 work
/// a handshake costs; allocation-free in steady state (buckets are structs in the dictionary).
/// </para>
/// </remarks>
internal sealed class HandshakeRateLimiter
{
    /// <summary>Refill rate per source.</summary>
    public const int PacketsPerSecond = 20;

    /// <summary>Packets a fresh (or long idle) source may send at once.</summary>
    public const int Burst = 5;

    /// <summary>Default cap on tracked sources.</summary>
    public const int DefaultMaxEntries = 65536;

    /// <summary>How long an idle source is remembered (its bucket is full long before).</summary>
    public static readonly TimeSpan EntryLifetime = TimeSpan.FromSeconds(1);

    private static readonly UInt128 Prefix64Mask = new(ulong.MaxValue, 0);

    private readonly TimeProvider _time;
    private readonly int _maxEntries;
    private readonly long _packetCost;
    private readonly long _maxTokens;
    private readonly long _lifetime;
    private readonly Dictionary<UInt128, Bucket> _buckets = new();
    private readonly Lock _gate = new();
    private long _lastSweep;

    /// <summary>Creates a limiter with <see cref="DefaultMaxEntries"/>.</summary>
    public HandshakeRateLimiter(TimeProvider time)
        : this(time, DefaultMaxEntries)
    {
    }

    /// <summary>Creates a limiter tracking at most <paramref name="maxEntries"/> sources.</summary>
    public HandshakeRateLimiter(TimeProvider time, int maxEntries)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEntries, 1);
        _time = time;
        _maxEntries = maxEntries;
        _packetCost = time.TimestampFrequency / PacketsPerSecond;
        _maxTokens = _packetCost * Burst;
        _lifetime = (long)(EntryLifetime.TotalSeconds * time.TimestampFrequency);
        _lastSweep = time.GetTimestamp();
    }

    /// <summary>How many sources are tracked now.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _buckets.Count;
            }
        }
    }

    /// <summary>Whether a handshake message from <paramref name="source"/> may be processed now; consumes one token if so.</summary>
    public bool Allow(Endpoint source)
    {
        UInt128 key = source.IsIPv4 ? source.Address : source.Address & Prefix64Mask;
        long now = _time.GetTimestamp();
        lock (_gate)
        {
            if (now - _lastSweep >= _lifetime)
            {
                Sweep(now);
            }

            ref Bucket bucket = ref CollectionsMarshal.GetValueRefOrNullRef(_buckets, key);
            if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref bucket))
            {
                if (_buckets.Count >= _maxEntries)
                {
                    Sweep(now);
                    if (_buckets.Count >= _maxEntries)
                    {
                        return false;
                    }
                }

                _buckets[key] = new Bucket { Tokens = _maxTokens - _packetCost, LastTimestamp = now };
                return true;
            }

            bucket.Tokens = Math.Min(_maxTokens, bucket.Tokens + Math.Max(0, now - bucket.LastTimestamp));
            bucket.LastTimestamp = now;
            if (bucket.Tokens >= _packetCost)
            {
                bucket.Tokens -= _packetCost;
                return true;
            }

            return false;
        }
    }

    // Called under the lock. Removing while enumerating is allowed for Dictionary since .NET Core 3.0.
    private void Sweep(long now)
    {
        _lastSweep = now;
        foreach (var (key, bucket) in _buckets)
        {
            if (now - bucket.LastTimestamp >= _lifetime)
            {
                _buckets.Remove(key);
            }
        }
    }

    private struct Bucket
    {
        public long Tokens;
        public long LastTimestamp;
    }
}
