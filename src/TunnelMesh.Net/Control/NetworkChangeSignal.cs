using System.Net;
using System.Net.NetworkInformation;

namespace TunnelMesh.Net.Control;

/// <summary>
/// Tells the node that its network changed (an interface address came or went): by default from
/// <see cref="NetworkChange.NetworkAddressChanged"/>; tests raise it themselves. Each change says
/// whether one of the host's addresses went away: then sockets and connections bound to it (the
/// control plane's HTTP connections, the map stream, a direct path's source) may be dead without
/// anything telling us, and the node moves off them at once instead of waiting for a timeout.
/// </summary>
internal sealed class NetworkChangeSignal : IDisposable
{
    private readonly bool _system;
    private HashSet<IPAddress> _addresses = [];

    private NetworkChangeSignal(bool system)
    {
        _system = system;
        if (system)
        {
            _addresses = LocalAddresses();
            NetworkChange.NetworkAddressChanged += OnSystemChange;
        }
    }

    /// <summary>Raised on the thread that saw the change, with whether an address went away; handlers must not block.</summary>
    public event Action<bool>? Changed;

    /// <summary>A signal from the operating system's address-change notifications.</summary>
    public static NetworkChangeSignal FromSystem() => new(system: true);

    /// <summary>A signal raised only by <see cref="Raise"/> (tests).</summary>
    public static NetworkChangeSignal Manual() => new(system: false);

    /// <summary>Raises <see cref="Changed"/>.</summary>
    /// <param name="addressLost">Whether one of the host's addresses went away.</param>
    public void Raise(bool addressLost = false) => Changed?.Invoke(addressLost);

    public void Dispose()
    {
        if (_system)
        {
            NetworkChange.NetworkAddressChanged -= OnSystemChange;
        }
    }

    /// <summary>The host's unicast addresses now (empty when the system does not answer).</summary>
    internal static HashSet<IPAddress> LocalAddresses()
    {
        var addresses = new HashSet<IPAddress>();
        try
        {
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
                {
                    addresses.Add(unicast.Address);
                }
            }
        }
        catch (NetworkInformationException)
        {
            // No answer this time: compare against an empty set (nothing lost) until the next change.
        }

        return addresses;
    }

    private void OnSystemChange(object? sender, EventArgs e)
    {
        var now = LocalAddresses();
        var before = Interlocked.Exchange(ref _addresses, now);
        Raise(addressLost: !before.IsSubsetOf(now));
    }
}
