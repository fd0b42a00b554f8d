// CONTRACT STUBS (replay window, allowed IPs, rate limiter) — to be replaced by the real implementations (each type moves to its own file).
#pragma warning disable CA1067, CA1822, CA1036, CS1591
using TunnelMesh.Net.Transport;

namespace TunnelMesh.Net.WireGuard;

/// <summary>Sliding replay window over transport counters (at least 2048 packets).</summary>
internal sealed class ReplayWindow
{
    public bool TryAccept(ulong counter) => throw new NotImplementedException();
    public void Reset() => throw new NotImplementedException();
}

/// <summary>Longest-prefix-match table from IPv4/IPv6 prefixes to values (peers).</summary>
internal sealed class AllowedIpsTable<T> where T : class
{
    public void Insert(ReadOnlySpan<byte> address, int prefixLength, T value) => throw new NotImplementedException();
    public bool Remove(ReadOnlySpan<byte> address, int prefixLength) => throw new NotImplementedException();
    public int RemoveAll(T value) => throw new NotImplementedException();
    public T? Lookup(ReadOnlySpan<byte> address) => throw new NotImplementedException();
    public IEnumerable<(byte[] Address, int PrefixLength)> EntriesFor(T value) => throw new NotImplementedException();
}

/// <summary>Per-source token bucket for handshake initiations under load.</summary>
internal sealed class HandshakeRateLimiter
{
    public HandshakeRateLimiter(TimeProvider time) => throw new NotImplementedException();
    public bool Allow(Endpoint source) => throw new NotImplementedException();
}
