namespace TunnelMesh.Net.Transport;

/// <summary>
/// The node's transport when it has a relay: direct UDP (or whatever direct transport it was given)
/// and the <see cref="RelayTransport"/> side by side. A datagram goes to the relay when its endpoint
/// is a relay path (<see cref="Endpoint.IsRelay"/>), else to the direct transport, so the UDP path is
/// unchanged: a run of direct datagrams is one call to it, as before. Both deliver to the same receiver.
/// </summary>
internal sealed class PathTransport : IDatagramTransport
{
    public PathTransport(IDatagramTransport direct, RelayTransport relay)
    {
        ArgumentNullException.ThrowIfNull(direct);
        ArgumentNullException.ThrowIfNull(relay);
        Direct = direct;
        Relay = relay;
    }

    /// <summary>The direct (UDP) transport.</summary>
    public IDatagramTransport Direct { get; }

    /// <summary>The relay transport.</summary>
    public RelayTransport Relay { get; }

    /// <inheritdoc/>
    public int LocalPort => Direct.LocalPort;

    /// <inheritdoc/>
    public void Start(IDatagramReceiver receiver)
    {
        Direct.Start(receiver);
        Relay.Start(receiver);
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<PacketBuffer> batch)
    {
        // Consecutive datagrams of the same kind go in one call (allocation-free slicing).
        int start = 0;
        for (int i = 1; i <= batch.Length; i++)
        {
            if (i == batch.Length || batch[i].Endpoint.IsRelay != batch[start].Endpoint.IsRelay)
            {
                var run = batch[start..i];
                if (run[0].Endpoint.IsRelay)
                {
                    Relay.Send(run);
                }
                else
                {
                    Direct.Send(run);
                }

                start = i;
            }
        }
    }

    /// <summary>Disposes both transports. Safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        await Relay.DisposeAsync().ConfigureAwait(false);
        await Direct.DisposeAsync().ConfigureAwait(false);
    }
}
