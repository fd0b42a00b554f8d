using System.Net;
using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Tests.Support;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.WireGuard;

namespace TunnelMesh.Net.Tests.Units;

public class HandshakeRateLimiterTests
{
    private static Endpoint Ep(string address, int port = 51820) => Endpoint.FromIPEndPoint(new IPEndPoint(IPAddress.Parse(address), port));

    private static int AllowedOf(HandshakeRateLimiter limiter, Endpoint source, int attempts)
    {
        int allowed = 0;
        for (int i = 0; i < attempts; i++)
        {
            allowed += limiter.Allow(source) ? 1 : 0;
        }

        return allowed;
    }

    [Fact]
    public void A_burst_of_five_then_twenty_per_second()
    {
        var clock = new FakeTimeProvider();
        var limiter = new HandshakeRateLimiter(clock);
        var source = Ep("192.0.2.1");
        Assert.Equal(HandshakeRateLimiter.Burst, AllowedOf(limiter, source, 100));

        clock.Advance(TimeSpan.FromMilliseconds(49));
        Assert.False(limiter.Allow(source));
        clock.Advance(TimeSpan.FromMilliseconds(1));  // 50 ms = one packet's worth
        Assert.True(limiter.Allow(source));
        Assert.False(limiter.Allow(source));

        // Over 10 s of steady pressure: 20 per second.
        int allowed = 0;
        for (int ms = 0; ms < 10_000; ms += 10)
        {
            clock.Advance(TimeSpan.FromMilliseconds(10));
            allowed += AllowedOf(limiter, source, 3);
        }

        Assert.Equal(200, allowed);

        clock.Advance(TimeSpan.FromSeconds(5));    // refilled, but never beyond the burst
        Assert.Equal(HandshakeRateLimiter.Burst, AllowedOf(limiter, source, 100));
    }

    [Fact]
    public void Sources_are_bucketed_by_IPv4_address_and_IPv6_slash_64_and_the_port_is_ignored()
    {
        var limiter = new HandshakeRateLimiter(new FakeTimeProvider());
        Assert.Equal(5, AllowedOf(limiter, Ep("192.0.2.1", 1), 10));
        Assert.Equal(0, AllowedOf(limiter, Ep("192.0.2.1", 2), 10));
        Assert.Equal(5, AllowedOf(limiter, Ep("192.0.2.2", 1), 10));

        Assert.Equal(5, AllowedOf(limiter, Ep("2001:db8:1:2::1"), 10));
        Assert.Equal(0, AllowedOf(limiter, Ep("2001:db8:1:2:ffff::9"), 10)); // same /64
        Assert.Equal(5, AllowedOf(limiter, Ep("2001:db8:1:3::1"), 10));      // next /64
        Assert.Equal(5, AllowedOf(limiter, Ep("::ffff:192.0.2.3"), 10));     // IPv4-mapped is IPv4
        Assert.Equal(0, AllowedOf(limiter, Ep("192.0.2.3"), 10));
        Assert.Equal(5, limiter.Count);
    }

    [Fact]
    public void Idle_sources_are_forgotten()
    {
        var clock = new FakeTimeProvider();
        var limiter = new HandshakeRateLimiter(clock);
        for (int i = 0; i < 100; i++)
        {
            limiter.Allow(Endpoint.FromIPv4(0xC0000200u + (uint)i, 1));
        }

        Assert.Equal(100, limiter.Count);
        clock.Advance(HandshakeRateLimiter.EntryLifetime);
        limiter.Allow(Ep("198.51.100.1"));
        Assert.Equal(1, limiter.Count);
    }

    [Fact]
    public void The_table_is_capped_and_new_sources_are_refused_while_it_is_full_of_active_ones()
    {
        var clock = new FakeTimeProvider();
        var limiter = new HandshakeRateLimiter(clock, maxEntries: 4);
        for (uint i = 1; i <= 4; i++)
        {
            Assert.True(limiter.Allow(Endpoint.FromIPv4(0x0A000000u + i, 1)));
        }

        Assert.False(limiter.Allow(Ep("10.0.0.5")));
        Assert.True(limiter.Allow(Ep("10.0.0.1")));  // known sources keep working
        Assert.Equal(4, limiter.Count);

        clock.Advance(TimeSpan.FromMilliseconds(1500));
        Assert.True(limiter.Allow(Ep("10.0.0.5")));
        Assert.Equal(1, limiter.Count);
    }

    [Fact]
    public async Task Is_thread_safe()
    {
        var limiter = new HandshakeRateLimiter(new FakeTimeProvider());
        int allowed = 0;
        var source = Ep("203.0.113.9");
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (int i = 0; i < 10_000; i++)
            {
                if (limiter.Allow(source))
                {
                    Interlocked.Increment(ref allowed);
                }

                limiter.Allow(Endpoint.FromIPv4((uint)i, 7));
            }
        })));
        Assert.Equal(HandshakeRateLimiter.Burst, allowed);
    }

    [Fact]
    public void Steady_state_does_not_allocate()
    {
        var clock = new FakeTimeProvider();
        var limiter = new HandshakeRateLimiter(clock);
        var sources = Enumerable.Range(0, 64).Select(i => Endpoint.FromIPv4(0x0A000000u + (uint)i, 1)).ToArray();
        Allocations.AssertNonePerCall(100_000, i => limiter.Allow(sources[i & 63]), "rate limiter checks");
    }
}
