using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Transport;
using TunnelMesh.Net.Transport.PortMapping;

namespace TunnelMesh.Net;

/// <summary>
/// A control-mode node's port mapping (<see cref="MeshNodeOptions.EnablePortMapping"/>): a
/// <see cref="PortMapper"/> for the WireGuard UDP port whose external endpoint is published as one
/// more candidate of the node. It asks the gateway only once STUN shows the node behind a NAT (its
/// reflexive IPv4 address is none of this host's own addresses), and again whenever the reflexive
/// endpoint changes.
/// </summary>
internal sealed class MeshNodePortMapping : IAsyncDisposable
{
    private readonly PortMapper _mapper;
    private readonly StunClient _stun;
    private readonly Action<IPEndPoint> _onReflexive;

    private MeshNodePortMapping(PortMapper mapper, StunClient stun)
    {
        _mapper = mapper;
        _stun = stun;
        _onReflexive = _ => _mapper.Wake();
        _stun.ReflexiveEndpointChanged += _onReflexive;
    }

    /// <summary>The mapping held now, or null.</summary>
    public PortMappingLease? Current => _mapper.Current;

    /// <summary>Starts mapping <paramref name="port"/>; null when the option is off or the socket is bound to loopback (nothing outside could use a mapping).</summary>
    public static MeshNodePortMapping? Start(MeshNodeOptions options, int port, StunClient stun, MeshControlPlane control, DropCounters drops, TimeProvider time, ILoggerFactory loggerFactory)
    {
        if (!options.EnablePortMapping || IPAddress.IsLoopback(options.ListenAddress) || port is < 1 or > 65535)
        {
            return null;
        }

        var mapper = new PortMapper(
            new PortMapperOptions
            {
                InternalPort = port,
                ShouldMap = () => IsBehindNat(stun.ReflexiveEndpoint),
                Changed = external => control.SetPortMappedEndpoint(external?.ToString()),
                Drops = drops,
                Time = time,
            },
            loggerFactory.CreateLogger<PortMapper>());
        var mapping = new MeshNodePortMapping(mapper, stun);
        mapper.Start();
        return mapping;
    }

    public async ValueTask DisposeAsync()
    {
        _stun.ReflexiveEndpointChanged -= _onReflexive;
        await _mapper.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>True when <paramref name="reflexive"/> is an IPv4 address that is none of this host's interface addresses.</summary>
    internal static bool IsBehindNat(IPEndPoint? reflexive)
    {
        if (reflexive is null)
        {
            return false;
        }

        var address = reflexive.Address.IsIPv4MappedToIPv6 ? reflexive.Address.MapToIPv4() : reflexive.Address;
        if (address.AddressFamily != AddressFamily.InterNetwork || IPAddress.IsLoopback(address))
        {
            return false;
        }

        try
        {
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
                {
                    if (unicast.Address.Equals(address))
                    {
                        return false;
                    }
                }
            }
        }
        catch (NetworkInformationException)
        {
            return false;
        }

        return true;
    }
}
