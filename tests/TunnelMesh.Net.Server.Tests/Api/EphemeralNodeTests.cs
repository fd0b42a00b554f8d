using Microsoft.Extensions.Time.Testing;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Tests.Support;

namespace TunnelMesh.Net.Server.Tests.Api;

public sealed class EphemeralNodeTests
{
    [Theory]
    [InlineData("memory")]
    [InlineData("sqlite")]
    public async Task An_ephemeral_node_is_removed_once_offline_longer_than_the_timeout_and_others_stay(string store)
    {
        var time = new FakeTimeProvider();
        await using CoordinatorHost host = await CoordinatorHost.StartAsync(o => o.EphemeralTimeout = TimeSpan.FromMinutes(10), time, storeKind: store);
        CreatedAuthKey ephemeralKey = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true, Ephemeral: true));
        CreatedAuthKey plainKey = await host.CreateKeyAsync(new CreateAuthKeyRequest(Reusable: true));
        JoinResponse eph = await host.JoinAsync(ephemeralKey.Key, "ci-runner");
        JoinResponse asked = await host.JoinAsync(plainKey.Key, "asked", ephemeral: true);
        JoinResponse keeper = await host.JoinAsync(plainKey.Key, "keeper");
        Assert.True(eph.Self.Ephemeral);
        Assert.True(asked.Self.Ephemeral);
        Assert.False(keeper.Self.Ephemeral);

        // ci-runner holds a stream (online) for a while; 'asked' never connects and goes after the timeout.
        MapStream map = await host.OpenMapAsync(eph.NodeToken);
        await map.WaitUntilAsync(m => m.Messages >= 1, "snapshot");
        time.Advance(TimeSpan.FromMinutes(30));
        await PollAsync(async () => await host.Store.GetNodeAsync(asked.Self.Id) is null, "asked removed");
        Assert.NotNull(await host.Store.GetNodeAsync(eph.Self.Id));

        await map.DisposeAsync();
        await PollAsync(async () => (await host.Store.GetNodeAsync(eph.Self.Id))?.Online == false, "ci-runner offline");

        time.Advance(TimeSpan.FromMinutes(9));
        var reaper = (TunnelMesh.Net.Server.Api.EphemeralNodeReaper)host.Services.GetService(typeof(TunnelMesh.Net.Server.Api.EphemeralNodeReaper))!;
        Assert.Equal(TimeSpan.FromMinutes(1), reaper.Interval);
        Assert.Equal(0, await reaper.SweepAsync(CancellationToken.None));
        Assert.NotNull(await host.Store.GetNodeAsync(eph.Self.Id));

        // Past the timeout: the next sweep (every minute) removes it.
        time.Advance(TimeSpan.FromMinutes(3));
        await PollAsync(async () => await host.Store.GetNodeAsync(eph.Self.Id) is null, "ci-runner removed");
        Assert.NotNull(await host.Store.GetNodeAsync(keeper.Self.Id));
    }

    private static async Task PollAsync(Func<Task<bool>> condition, string what)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "not before the deadline: " + what);
            await Task.Delay(10);
        }
    }
}
