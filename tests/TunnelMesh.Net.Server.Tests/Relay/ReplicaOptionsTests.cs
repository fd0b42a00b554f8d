using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Relay;

public sealed class ReplicaOptionsTests
{
    private const string Secret = "0123456789abcdef0123456789abcdef";

    public static TheoryData<string, Action<MeshCoordinatorOptions>> BadOptions => new()
    {
        { "ReplicaUrl", o => { o.ReplicaUrl = "http://10.0.0.2:8080"; o.PostgresConnectionString = "Host=db"; } }, // no secret
        { "ReplicaUrl", o => { o.ReplicaUrl = "http://10.0.0.2:8080"; o.ClusterSecret = Secret; } }, // SQLite
        { "ReplicaUrl", o => { o.ReplicaUrl = "ftp://10.0.0.2"; o.ClusterSecret = Secret; o.PostgresConnectionString = "Host=db"; } },
        { "ReplicaUrl", o => { o.ReplicaUrl = "10.0.0.2:8080"; o.ClusterSecret = Secret; o.PostgresConnectionString = "Host=db"; } },
        { "ClusterSecret", o => { o.ClusterSecret = Secret; o.PostgresConnectionString = "Host=db"; } }, // no URL
        { "ClusterSecret", o => { o.ReplicaUrl = "http://10.0.0.2:8080"; o.ClusterSecret = "short"; o.PostgresConnectionString = "Host=db"; } },
        { "ClusterSecret", o => { o.ReplicaUrl = "http://10.0.0.2:8080"; o.ClusterSecret = Secret + " x"; o.PostgresConnectionString = "Host=db"; } },
        { "ReplicaHeartbeatInterval", o => o.ReplicaHeartbeatInterval = TimeSpan.FromMilliseconds(100) },
        { "ReplicaLinkQueueCapacity", o => o.ReplicaLinkQueueCapacity = 0 },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void The_validator_names_the_bad_replica_option(string option, Action<MeshCoordinatorOptions> spoil)
    {
        var o = new MeshCoordinatorOptions { AdminCredential = CoordinatorHost.AdminCredential };
        spoil(o);
        ValidateOptionsResult r = new MeshCoordinatorOptionsValidator().Validate(null, o);
        Assert.True(r.Failed);
        Assert.Single(r.Failures!);
        Assert.StartsWith($"MeshCoordinatorOptions.{option}: ", r.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Replica_options_with_the_postgres_store_are_accepted()
    {
        var o = new MeshCoordinatorOptions
        {
            AdminCredential = CoordinatorHost.AdminCredential,
            PostgresConnectionString = "Host=db",
            ReplicaUrl = "http://10.0.0.2:8080",
            ClusterSecret = Secret,
        };
        Assert.True(new MeshCoordinatorOptionsValidator().Validate(null, o).Succeeded);
    }

    [Fact]
    public async Task A_replica_on_a_store_that_is_not_postgres_does_not_start_and_names_the_option()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddMeshCoordinator(o =>
        {
            o.AdminCredential = CoordinatorHost.AdminCredential;
            o.StoreFactory = _ => new MemoryMeshStore();
            o.ReplicaUrl = "http://10.0.0.2:8080";
            o.ClusterSecret = Secret;
        });
        await using WebApplication app = builder.Build();
        app.MapMeshCoordinator();
        InvalidOperationException e = await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync());
        Assert.StartsWith("MeshCoordinatorOptions.ReplicaUrl: ", e.Message, StringComparison.Ordinal);
    }
}
