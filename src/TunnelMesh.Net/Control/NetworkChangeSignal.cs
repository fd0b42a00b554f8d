using System.Net.NetworkInformation;

namespace TunnelMesh.Net.Control;

/// <summary>
/// Tells the node that its network changed (an interface address came or went): by default from
/// <see cref="NetworkChange.NetworkAddressChanged"/>; tests raise it themselves.
/// </summary>
internal sealed class NetworkChangeSignal : IDisposable
{
    private readonly bool _system;

    private NetworkChangeSignal(bool system)
    {
        _system = system;
        if (system)
        {
            NetworkChange.NetworkAddressChanged += OnSystemChange;
        }
    }

    /// <summary>Raised on the thread that saw the change; handlers must not block.</summary>
    public event Action? Changed;

    /// <summary>A signal from the operating system's address-change notifications.</summary>
    public static NetworkChangeSignal FromSystem() => new(system: true);

    /// <summary>A signal raised only by <see cref="Raise"/> (tests).</summary>
    public static NetworkChangeSignal Manual() => new(system: false);

    /// <summary>Raises <see cref="Changed"/>.</summary>
    public void Raise() => Changed?.Invoke();

    public void Dispose()
    {
        if (_system)
        {
            NetworkChange.NetworkAddressChanged -= OnSystemChange;
        }
    }

    private void OnSystemChange(object? sender, EventArgs e) => Raise();
}
