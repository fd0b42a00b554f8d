using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace TunnelMesh.Net.Transport.PortMapping;

/// <summary>
/// Finds the IPv4 default gateway: the router a port-mapping request goes to. On Linux from the
/// kernel's routing table (<c>/proc/net/route</c>: the up default route with a gateway and the
/// lowest metric); elsewhere from the interfaces' gateway addresses.
/// </summary>
internal static class DefaultGateway
{
    private const int RtfUp = 0x1;
    private const int RtfGateway = 0x2;

    /// <summary>The IPv4 default gateway of this host, or null when there is none (or it cannot be read).</summary>
    public static IPAddress? Find()
    {
        if (OperatingSystem.IsLinux())
        {
            try
            {
                return Parse(File.ReadAllText("/proc/net/route"));
            }
            catch (IOException)
            {
                return null;
            }
            catch (UnauthorizedAccessException)
            {
                return null;
            }
        }

        try
        {
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                if (nic.OperationalStatus != OperationalStatus.Up)
                {
                    continue;
                }

                foreach (var gateway in nic.GetIPProperties().GatewayAddresses)
                {
                    if (gateway.Address.AddressFamily == AddressFamily.InterNetwork && !gateway.Address.Equals(IPAddress.Any))
                    {
                        return gateway.Address;
                    }
                }
            }
        }
        catch (NetworkInformationException)
        {
        }

        return null;
    }

    /// <summary>
    /// Picks the default gateway from the text of <c>/proc/net/route</c> (a header line, then
    /// tab-separated Iface, Destination, Gateway, Flags, RefCnt, Use, Metric, Mask, … with addresses
    /// as 8 hex digits in the kernel's byte order, little-endian on the machines .NET runs on).
    /// Lines that do not parse are skipped. Null when no up default route has a gateway.
    /// </summary>
    internal static IPAddress? Parse(string routeTable)
    {
        IPAddress? best = null;
        long bestMetric = long.MaxValue;
        foreach (string line in routeTable.Split('\n').Skip(1))
        {
            string[] f = line.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 8
                || !uint.TryParse(f[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint destination)
                || !uint.TryParse(f[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint gateway)
                || !int.TryParse(f[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int flags)
                || !long.TryParse(f[6], NumberStyles.Integer, CultureInfo.InvariantCulture, out long metric)
                || !uint.TryParse(f[7], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint mask))
            {
                continue;
            }

            if (destination != 0 || mask != 0 || gateway == 0 || (flags & (RtfUp | RtfGateway)) != (RtfUp | RtfGateway) || metric >= bestMetric)
            {
                continue;
            }

            // The kernel prints the address as the host-order integer of network-order bytes.
            uint networkOrder = BitConverter.IsLittleEndian ? gateway : BinaryPrimitives.ReverseEndianness(gateway);
            var bytes = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, networkOrder);
            best = new IPAddress(bytes);
            bestMetric = metric;
        }

        return best;
    }
}
