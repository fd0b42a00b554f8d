using System.Net;
using System.Text;

namespace TunnelMesh.Net.Socks;

/// <summary>Settings of a <see cref="MeshSocks5Server"/>; validated by <see cref="MeshSocks5Server.StartAsync"/>.</summary>
public sealed class MeshSocks5Options
{
    /// <summary>Default <see cref="ListenEndPoint"/> port (the registered SOCKS port).</summary>
    public const int DefaultPort = 1080;

    /// <summary>The TCP endpoint the proxy listens on, on the host (not on the mesh).</summary>
    /// <remarks>Default 127.0.0.1:1080. Port 0 lets the OS choose; read the result from <see cref="MeshSocks5Server.LocalEndPoint"/>.
    /// An address that is not loopback is refused unless <see cref="AllowNonLoopback"/> is set.</remarks>
    public IPEndPoint ListenEndPoint { get; set; } = new(IPAddress.Loopback, DefaultPort);

    /// <summary>Whether <see cref="ListenEndPoint"/> may be an address other than loopback.</summary>
    /// <remarks>Default false. Anyone who reaches a non-loopback listener reaches the mesh as this node,
    /// so set it only together with <see cref="Username"/>/<see cref="Password"/> or on a trusted network.</remarks>
    public bool AllowNonLoopback { get; set; }

    /// <summary>The user name clients must present (RFC 1929), 1-255 bytes of UTF-8.</summary>
    /// <remarks>Default null. Null together with <see cref="Password"/> means no authentication
    /// (method 0x00); when both are set, username/password (method 0x02) is the only method offered.</remarks>
    public string? Username { get; set; }

    /// <summary>The password clients must present (RFC 1929), 1-255 bytes of UTF-8. Compared in constant time; never logged.</summary>
    /// <remarks>Default null; set it together with <see cref="Username"/>.</remarks>
    public string? Password { get; set; }

    /// <summary>How long a client has to send its greeting, authentication and request.</summary>
    /// <remarks>Default 10 seconds; 1 ms to 10 minutes. The dial through the mesh is not part of it
    /// (see <see cref="ConnectTimeout"/>).</remarks>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a dial through the mesh may take before the client gets <see cref="Socks5Reply.HostUnreachable"/>.</summary>
    /// <remarks>Default 30 seconds (as <see cref="MeshTcpOptions.ConnectTimeout"/>); 1 ms to 10 minutes.</remarks>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How many client connections may be open at once (handshaking or relaying).</summary>
    /// <remarks>Default 1024; 1 to 1,000,000. A connection beyond the limit is closed at once, without a reply.</remarks>
    public int MaxConnections { get; set; } = 1024;

    /// <summary>Throws <see cref="MeshConfigurationException"/> naming the first invalid option.</summary>
    internal void Validate()
    {
        const string O = nameof(MeshSocks5Options);
        if (ListenEndPoint is null)
        {
            throw new MeshConfigurationException($"{O}.{nameof(ListenEndPoint)}", "is required.");
        }

        if (!IPAddress.IsLoopback(ListenEndPoint.Address) && !AllowNonLoopback)
        {
            throw new MeshConfigurationException(
                $"{O}.{nameof(ListenEndPoint)}",
                $"{ListenEndPoint.Address} is not a loopback address; anyone who reaches it reaches the mesh as this node. Set {O}.{nameof(AllowNonLoopback)} = true to allow it.");
        }

        if (Username is null != Password is null)
        {
            string missing = Username is null ? nameof(Username) : nameof(Password);
            string present = Username is null ? nameof(Password) : nameof(Username);
            throw new MeshConfigurationException($"{O}.{missing}", $"is required when {O}.{present} is set (set both for username/password authentication, or neither for none).");
        }

        CheckCredential(Username, $"{O}.{nameof(Username)}");
        CheckCredential(Password, $"{O}.{nameof(Password)}");

        if (HandshakeTimeout < TimeSpan.FromMilliseconds(1) || HandshakeTimeout > TimeSpan.FromMinutes(10))
        {
            throw new MeshConfigurationException($"{O}.{nameof(HandshakeTimeout)}", $"{HandshakeTimeout} is outside 1 ms to 10 minutes.");
        }

        if (ConnectTimeout < TimeSpan.FromMilliseconds(1) || ConnectTimeout > TimeSpan.FromMinutes(10))
        {
            throw new MeshConfigurationException($"{O}.{nameof(ConnectTimeout)}", $"{ConnectTimeout} is outside 1 ms to 10 minutes.");
        }

        if (MaxConnections is < 1 or > 1_000_000)
        {
            throw new MeshConfigurationException($"{O}.{nameof(MaxConnections)}", $"{MaxConnections} is outside 1-1000000.");
        }
    }

    private static void CheckCredential(string? value, string option)
    {
        if (value is null)
        {
            return;
        }

        int length = Encoding.UTF8.GetByteCount(value);
        if (length is < 1 or > 255)
        {
            // The length only, never the value: it may be a secret.
            throw new MeshConfigurationException(option, $"is {length} bytes of UTF-8; RFC 1929 allows 1-255.");
        }
    }
}
