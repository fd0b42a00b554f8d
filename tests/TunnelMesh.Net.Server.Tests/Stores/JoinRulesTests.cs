using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Tests.Stores;

public sealed class JoinRulesTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Property]
    public Property The_first_free_name_is_free_and_no_smaller_candidate_is() =>
        Prop.ForAll<string, int[]>((raw, takenSuffixes) =>
        {
            string host = NameRules.Normalize(raw);
            var taken = new HashSet<string>(StringComparer.Ordinal) { host };
            foreach (int n in takenSuffixes ?? [])
            {
                taken.Add(NameRules.WithSuffix(host, 2 + (Math.Abs(n % 50))));
            }

            string name = JoinRules.FirstFreeName(host, taken);
            var smaller = Enumerable.Range(2, 60).Select(n => NameRules.WithSuffix(host, n)).TakeWhile(c => c != name);
            return !taken.Contains(name) && NameRules.IsValid(name) && smaller.All(taken.Contains);
        });

    [Fact]
    public void A_free_host_name_is_kept() =>
        Assert.Equal("web", JoinRules.FirstFreeName("web", new HashSet<string> { "web-2", "db" }));

    [Theory]
    [InlineData(false, false, 1, 0, null)]          // fine
    [InlineData(true, false, 1, 0, JoinStatus.KeyRevoked)]
    [InlineData(false, false, 0, 0, JoinStatus.KeyExpired)] // expires exactly now
    [InlineData(false, false, -1, 0, JoinStatus.KeyExpired)]
    [InlineData(false, false, 1, 1, JoinStatus.KeyUsed)]    // one-shot, used
    [InlineData(false, true, 1, 5, null)]           // reusable, used
    [InlineData(true, false, -1, 1, JoinStatus.KeyRevoked)] // revoked wins over expired and used
    public void An_auth_key_admits_or_says_why_not(bool revoked, bool reusable, int expiresInMinutes, long uses, JoinStatus? expected)
    {
        var key = new AuthKeyRecord(1, new byte[32], reusable, false, [], null, T0.AddDays(-1), T0.AddMinutes(expiresInMinutes), revoked ? T0.AddHours(-1) : null, uses);
        Assert.Equal(expected, JoinRules.Refusal(key, T0));
        Assert.Equal(JoinStatus.KeyNotFound, JoinRules.Refusal(null, T0));
    }
}
