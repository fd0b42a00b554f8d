using System.Net;
using System.Text;
using TunnelMesh.Net.Transport.PortMapping;

namespace TunnelMesh.Net.Tests.Transport.PortMapping;

/// <summary>What the UPnP client takes from SSDP answers and device descriptions: only URLs on the gateway.</summary>
public class UpnpIgdParsingTests
{
    private static readonly IPAddress Gateway = IPAddress.Parse("198.51.100.1");

    // The answer miniupnpd 2.3.1 gave to a unicast M-SEARCH in the namespace lab.
    private const string MiniupnpdAnswer =
        "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" +
        "USN: uuid:3d3cec3a-8cf0-11e0-98ee-001a6bd2d07a::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nEXT:\r\n" +
        "SERVER: Debian UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: http://198.51.100.1:37409/rootDesc.xml\r\n\r\n";

    [Fact]
    public void The_location_of_an_ssdp_answer_is_taken_only_when_it_is_http_on_the_gateway()
    {
        Assert.Equal(new Uri("http://198.51.100.1:37409/rootDesc.xml"), UpnpIgdClient.ParseLocation(Encoding.ASCII.GetBytes(MiniupnpdAnswer), Gateway));
        Assert.Null(UpnpIgdClient.ParseLocation(Encoding.ASCII.GetBytes(MiniupnpdAnswer.Replace("198.51.100.1:37409", "192.0.2.99:80", StringComparison.Ordinal)), Gateway));
        Assert.Null(UpnpIgdClient.ParseLocation(Encoding.ASCII.GetBytes(MiniupnpdAnswer.Replace("http://", "file://", StringComparison.Ordinal)), Gateway));
        Assert.Null(UpnpIgdClient.ParseLocation(Encoding.ASCII.GetBytes(MiniupnpdAnswer.Replace("200 OK", "404 Not Found", StringComparison.Ordinal)), Gateway));
        Assert.Null(UpnpIgdClient.ParseLocation(Encoding.ASCII.GetBytes("garbage"), Gateway));
    }

    [Fact]
    public void The_connection_service_is_found_in_a_description_and_a_control_url_elsewhere_is_refused()
    {
        const string description = """
            <?xml version="1.0"?>
            <root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceList><device><deviceList><device><serviceList>
            <service><serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType><controlURL>/ctl/CmnIfCfg</controlURL></service>
            <service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>/ctl/IPConn</controlURL></service>
            </serviceList></device></deviceList></device></deviceList></device></root>
            """;
        var location = new Uri("http://198.51.100.1:37409/rootDesc.xml");
        var found = UpnpIgdClient.ParseDescription(description, location, Gateway);
        Assert.Equal((new Uri("http://198.51.100.1:37409/ctl/IPConn"), "urn:schemas-upnp-org:service:WANIPConnection:2"), found);

        Assert.Null(UpnpIgdClient.ParseDescription(description.Replace("/ctl/IPConn", "http://192.0.2.99/steal", StringComparison.Ordinal), location, Gateway));
        Assert.Null(UpnpIgdClient.ParseDescription("<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>", location, Gateway));
        Assert.Null(UpnpIgdClient.ParseDescription("<not xml", location, Gateway));
    }
}
