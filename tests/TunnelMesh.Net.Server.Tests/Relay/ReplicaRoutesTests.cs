using System.Security.Cryptography;
using TunnelMesh.Net.Server.Relay;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Tests.Relay;

public sealed class ReplicaRoutesTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly ReplicaRecord One = new("one", new Uri("ws://192.0.2.1/api/v1/relay/replica"), Now.AddSeconds(15));
    private static readonly ReplicaRecord Two = new("two", new Uri("ws://192.0.2.2/api/v1/relay/replica"), Now.AddSeconds(15));
    private static readonly ReplicaRecord Three = new("three", new Uri("ws://192.0.2.3/api/v1/relay/replica"), Now.AddSeconds(15));

    private static RelayKey NewKey() => RelayKey.Read(RandomNumberGenerator.GetBytes(32));

    [Fact]
    public void A_node_attached_to_another_live_replica_routes_there_and_never_to_this_one()
    {
        var routes = new ReplicaRoutes("one");
        routes.SetReplicas([One, Two]);
        RelayKey there = NewKey(), here = NewKey(), nowhere = NewKey();
        routes.Apply(there, "two", 1);
        routes.Apply(here, "one", 2);

        Assert.Equal(Two, routes.Lookup(there, Now));
        Assert.Null(routes.Lookup(here, Now));
        Assert.Null(routes.Lookup(nowhere, Now));
        Assert.Equal(2, routes.Sequence);
        Assert.Equal([Two], routes.OtherReplicas);
    }

    [Fact]
    public void An_attachment_that_moves_takes_its_frames_along_and_an_older_change_does_not_undo_it()
    {
        var routes = new ReplicaRoutes("one");
        routes.SetReplicas([One, Two, Three]);
        RelayKey key = NewKey();
        routes.Apply(key, "two", 5);
        routes.Apply(key, "three", 9);
        Assert.Equal(Three, routes.Lookup(key, Now));

        routes.Apply(key, "two", 7); // older than the move: ignored
        Assert.Equal(Three, routes.Lookup(key, Now));

        routes.Apply(key, null, 10); // left replica three
        Assert.Null(routes.Lookup(key, Now));
        Assert.Null(routes.AttachedTo(key));

        routes.Apply(key, "one", 11); // now attached here
        Assert.Null(routes.Lookup(key, Now));
        Assert.Equal("one", routes.AttachedTo(key));
        Assert.Equal([key], routes.KeysAttachedTo("one"));
        Assert.Empty(routes.KeysAttachedTo("three"));
        Assert.Equal(11, routes.Sequence);
    }

    [Fact]
    public void A_replica_whose_registration_expired_or_that_is_unknown_gets_no_frames()
    {
        var routes = new ReplicaRoutes("one");
        routes.SetReplicas([One, Two]);
        RelayKey onTwo = NewKey(), onGhost = NewKey();
        routes.Apply(onTwo, "two", 1);
        routes.Apply(onGhost, "ghost", 2);

        Assert.Equal(Two, routes.Lookup(onTwo, Now.AddSeconds(14)));
        Assert.Null(routes.Lookup(onTwo, Now.AddSeconds(15)));
        Assert.Null(routes.Lookup(onGhost, Now));

        // A later heartbeat renews it; a replica list without it removes it.
        routes.SetReplicas([One, Two with { Expires = Now.AddSeconds(30) }]);
        Assert.Equal("two", routes.Lookup(onTwo, Now.AddSeconds(20))!.Id);
        routes.SetReplicas([One]);
        Assert.Null(routes.Lookup(onTwo, Now));
    }

    [Fact]
    public void Store_records_with_a_key_of_the_wrong_length_are_ignored()
    {
        var routes = new ReplicaRoutes("one");
        routes.SetReplicas([Two]);
        RelayKey key = NewKey();
        routes.Apply([new AttachmentRecord(new byte[31], "two", 1), new AttachmentRecord(key.ToArray(), "two", 2)]);
        Assert.Equal(Two, routes.Lookup(key, Now));
        Assert.Equal(2, routes.Sequence);
    }
}
