using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Api;

public sealed class OptionsValidationTests
{
    public static TheoryData<string, Action<MeshCoordinatorOptions>> BadOptions => new()
    {
        { "Prefix4", o => o.Prefix4 = "bogus" },
        { "Prefix4", o => o.Prefix4 = "fd00::/64" },
        { "Prefix4", o => o.Prefix4 = "100.64.0.1/10" },
        { "Prefix4", o => o.Prefix4 = "10.0.0.0/31" },
        { "Prefix6", o => o.Prefix6 = "10.0.0.0/8" },
        { "Prefix6", o => o.Prefix6 = "fd00::/120" },
        { "DnsSuffix", o => o.DnsSuffix = "Not Valid" },
        { "DnsSuffix", o => o.DnsSuffix = "" },
        { "AdminCredential", o => o.AdminCredential = null },
        { "AdminCredential", o => o.AdminCredential = "short" },
        { "DefaultAuthKeyLifetime", o => o.DefaultAuthKeyLifetime = TimeSpan.Zero },
        { "EphemeralTimeout", o => o.EphemeralTimeout = TimeSpan.FromSeconds(-1) },
        { "JoinPermitsPerMinute", o => o.JoinPermitsPerMinute = 0 },
        { "MaxRequestBodyBytes", o => o.MaxRequestBodyBytes = 10 },
        { "MaxNodes", o => o.MaxNodes = 0 },
        { "StunEndpoints", o => o.StunEndpoints.Add("no-port") },
        { "PostgresConnectionString", o => o.PostgresConnectionString = " " },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void The_validator_names_the_bad_option(string option, Action<MeshCoordinatorOptions> spoil)
    {
        var o = new MeshCoordinatorOptions { AdminCredential = CoordinatorHost.AdminCredential };
        Assert.True(new MeshCoordinatorOptionsValidator().Validate(null, o).Succeeded);
        spoil(o);
        ValidateOptionsResult r = new MeshCoordinatorOptionsValidator().Validate(null, o);
        Assert.True(r.Failed);
        Assert.Single(r.Failures!);
        Assert.StartsWith($"MeshCoordinatorOptions.{option}: ", r.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_option_stops_the_start_with_its_name()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddMeshCoordinator(o =>
        {
            o.AdminCredential = CoordinatorHost.AdminCredential;
            o.StoreFactory = _ => new MemoryMeshStore();
            o.Prefix4 = "300.1.2.0/24";
        });
        await using WebApplication app = builder.Build();
        app.MapMeshCoordinator();
        OptionsValidationException e = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains("MeshCoordinatorOptions.Prefix4: '300.1.2.0/24'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MapMeshCoordinator_without_AddMeshCoordinator_says_what_is_missing()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        using WebApplication app = builder.Build();
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => app.MapMeshCoordinator());
        Assert.Contains("AddMeshCoordinator", e.Message, StringComparison.Ordinal);
    }
}
