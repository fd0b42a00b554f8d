using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Tests;

public sealed class NameRulesTests
{
    [Theory]
    [InlineData("Laptop", "laptop")]
    [InlineData("  my_box.local ", "my-box-local")]
    [InlineData("--", "node")]
    [InlineData("", "node")]
    [InlineData("a--b", "a-b")]
    public void Normalize_makes_one_dns_label(string input, string expected) => Assert.Equal(expected, NameRules.Normalize(input));

    [Property]
    public Property Normalized_names_are_always_valid_labels() =>
        Prop.ForAll<string>(s =>
        {
            string n = NameRules.Normalize(s);
            return NameRules.IsValid(n) && n.Length <= 63 && NameRules.IsValid(NameRules.WithSuffix(n, 12345));
        });

    [Fact]
    public void Addresses_round_trip_and_skip_network_and_broadcast()
    {
        var p = IPNetwork.Parse("100.64.0.0/10");
        Assert.Equal(IPAddress.Parse("100.64.0.1"), NameRules.Address4At(p, 0));
        Assert.Equal(IPAddress.Parse("100.127.255.254"), NameRules.Address4At(p, NameRules.UsableCount(p) - 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => NameRules.Address4At(p, NameRules.UsableCount(p)));
        Assert.Equal(IPAddress.Parse("fd74:6d65:7368::6440:5"), NameRules.Address6For(IPNetwork.Parse("fd74:6d65:7368::/48"), IPAddress.Parse("100.64.0.5")));
    }

    [Property]
    public Property Every_usable_index_round_trips_through_its_address()
    {
        var p = IPNetwork.Parse("100.64.0.0/10");
        return Prop.ForAll(Gen.Choose(0, (int)NameRules.UsableCount(p) - 1).ToArbitrary(), i => NameRules.IndexOf(p, NameRules.Address4At(p, i)) == i);
    }
}
