using System.Threading.RateLimiting;

namespace TunnelMesh.Net.Server.Api;

/// <summary>
/// Joins per client IP address: a token bucket per address holding
/// <see cref="MeshCoordinatorOptions.JoinPermitsPerMinute"/> tokens, refilled at that many per minute.
/// Lives in the join endpoint's filter rather than the rate-limiting middleware so it works whatever
/// the host application's middleware order is.
/// </summary>
internal sealed class JoinRateLimiter : IAsyncDisposable
{
    private readonly PartitionedRateLimiter<string> _limiter;

    public JoinRateLimiter(CoordinatorSettings settings)
    {
        int permits = settings.Options.JoinPermitsPerMinute;
        _limiter = PartitionedRateLimiter.Create<string, string>(address => RateLimitPartition.GetTokenBucketLimiter(
            address,
            _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = permits,
                TokensPerPeriod = permits,
                ReplenishmentPeriod = TimeSpan.FromMinutes(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
    }

    /// <summary>Takes a permit for the client address; false when it has none left.</summary>
    public bool TryAcquire(string clientAddress)
    {
        using RateLimitLease lease = _limiter.AttemptAcquire(clientAddress);
        return lease.IsAcquired;
    }

    public ValueTask DisposeAsync() => _limiter.DisposeAsync();
}
