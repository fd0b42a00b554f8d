namespace TunnelMesh.Net.Server.Relay;

/// <summary>
/// What the <see cref="RelayHub"/> tells the replica relay (<see cref="ReplicaRelay"/>) and asks of it
/// when several coordinator replicas share one store: which nodes attach here, and where a frame to
/// a node that is not attached here goes.
/// </summary>
internal interface IRelayReplicaBridge
{
    /// <summary>A node with <paramref name="key"/> now holds a relay connection on this replica.</summary>
    void Attached(RelayKey key);

    /// <summary>The node's last relay connection on this replica closed.</summary>
    void Detached(RelayKey key);

    /// <summary>
    /// Hands a frame for a node that is not attached here to the replica it is attached to; false when
    /// no other live replica holds it (the hub then drops it as an unknown destination). A frame taken
    /// but dropped on the way (a full link queue) is counted by the bridge and still returns true.
    /// </summary>
    bool TryForward(RelayKey destination, RelayKey source, ReadOnlySpan<byte> message);
}

/// <summary>What became of a frame handed to <see cref="RelayHub.DeliverLocal"/>.</summary>
internal enum RelayDelivery
{
    /// <summary>Queued for the node's connection.</summary>
    Queued,

    /// <summary>No node with that key is attached to this replica.</summary>
    UnknownDestination,

    /// <summary>The node's send queue is full; dropped.</summary>
    QueueFull,
}
