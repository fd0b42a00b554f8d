namespace TunnelMesh.Net.Server.Relay;

/// <summary>Limits of the coordinator's relay (<see cref="RelayHub"/>).</summary>
public sealed class MeshRelayOptions
{
    /// <summary>Largest WireGuard message in a frame (not counting the 32-byte key); a larger frame closes the connection (1009).</summary>
    /// <remarks>Default 65535. Range 148 (a handshake initiation) to 1 MiB.</remarks>
    public int MaxMessageSize { get; set; } = 65535;

    /// <summary>Frames waiting to go out to one node; when full, more frames to it are dropped and counted (the sender never waits).</summary>
    /// <remarks>Default 512. Range 1 to 65536.</remarks>
    public int SendQueueCapacity { get; set; } = 512;

    /// <summary>WebSocket keep-alive (ping) interval.</summary>
    /// <remarks>Default 15 s; zero turns it off.</remarks>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a closing connection may take to finish its close handshake before it is aborted.</summary>
    /// <remarks>Default 5 s.</remarks>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first option out of range.</summary>
    internal void Validate()
    {
        const string O = nameof(MeshRelayOptions);
        if (MaxMessageSize is < 148 or > 1 << 20)
        {
            throw new ArgumentOutOfRangeException($"{O}.{nameof(MaxMessageSize)}", MaxMessageSize, "must be 148 to 1048576 bytes.");
        }

        if (SendQueueCapacity is < 1 or > 65536)
        {
            throw new ArgumentOutOfRangeException($"{O}.{nameof(SendQueueCapacity)}", SendQueueCapacity, "must be 1 to 65536 frames.");
        }

        if (KeepAliveInterval < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException($"{O}.{nameof(KeepAliveInterval)}", KeepAliveInterval, "must not be negative.");
        }

        if (CloseTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException($"{O}.{nameof(CloseTimeout)}", CloseTimeout, "must be positive.");
        }
    }
}
