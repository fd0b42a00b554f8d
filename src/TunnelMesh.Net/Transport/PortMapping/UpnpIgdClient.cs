using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security;
using System.Text;
using System.Xml;

namespace TunnelMesh.Net.Transport.PortMapping;

/// <summary>
/// Asks a UPnP Internet Gateway Device for a UDP port mapping: an SSDP M-SEARCH sent to the
/// gateway's port 1900 (unicast: only the gateway is asked), its device description over HTTP, and
/// the WANIPConnection (or WANPPPConnection) service's SOAP actions GetExternalIPAddress,
/// AddPortMapping and DeletePortMapping.
/// </summary>
/// <remarks>
/// Trust and bounds: an SSDP answer counts only from the gateway's address; the description and
/// control URLs must point at the gateway's address too (no request goes anywhere else, whatever
/// the answers say); every HTTP exchange has a 2 s timeout and a 64 KiB body limit; XML is read
/// without DTDs. Anything else is dropped (SSDP: counted as <see cref="DropReason.PortMappingUnmatched"/>).
/// </remarks>
internal sealed class UpnpIgdClient : IDisposable
{
    private const int SsdpPort = 1900;
    private const int MaxBody = 64 * 1024;
    private const string Description = "tunnelmesh";
    private static readonly TimeSpan HttpTimeout = TimeSpan.FromSeconds(2);
    private static readonly string[] ServiceTypes =
    [
        "urn:schemas-upnp-org:service:WANIPConnection:2",
        "urn:schemas-upnp-org:service:WANIPConnection:1",
        "urn:schemas-upnp-org:service:WANPPPConnection:1",
    ];

    private readonly Func<SocketType, Socket> _createSocket;
    private readonly IPAddress _gateway;
    private readonly IPAddress _clientAddress;
    private readonly DropCounters _drops;
    private readonly TimeProvider _time;
    private readonly HttpClient _http;
    private (Uri Control, string ServiceType)? _service;

    /// <param name="createSocket">Makes the IPv4 UDP (SSDP) and TCP (HTTP) sockets; tests make them inside a namespace.</param>
    /// <param name="gateway">The gateway's address.</param>
    /// <param name="clientAddress">This host's address toward the gateway (the mapping's internal client).</param>
    /// <param name="drops">Where stray SSDP datagrams are counted.</param>
    /// <param name="time">The clock.</param>
    public UpnpIgdClient(Func<SocketType, Socket> createSocket, IPAddress gateway, IPAddress clientAddress, DropCounters drops, TimeProvider time)
    {
        _createSocket = createSocket;
        _gateway = gateway;
        _clientAddress = clientAddress;
        _drops = drops;
        _time = time;
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            MaxResponseHeadersLength = 16,
            ConnectCallback = ConnectAsync,
        };
        _http = new HttpClient(handler) { Timeout = HttpTimeout, MaxResponseContentBufferSize = MaxBody };
    }

    /// <summary>Whether the gateway answers as an IGD with a connection service.</summary>
    public async Task<bool> ProbeAsync(CancellationToken cancellationToken) => await FindServiceAsync(cancellationToken).ConfigureAwait(false) is not null;

    /// <summary>
    /// Maps UDP <paramref name="internalPort"/> (renewing <paramref name="previous"/>'s external port);
    /// null when the gateway is no IGD. Lease durations the device refuses (error 725) fall back to a
    /// permanent mapping, which <see cref="DeleteAsync"/> removes.
    /// </summary>
    /// <exception cref="PortMappingRefusedException">The device answered AddPortMapping with another error.</exception>
    public async Task<PortMappingLease?> MapAsync(ushort internalPort, TimeSpan lifetime, PortMappingLease? previous, CancellationToken cancellationToken)
    {
        if (await FindServiceAsync(cancellationToken).ConfigureAwait(false) is not { } service)
        {
            return null;
        }

        var (externalText, _) = await SoapAsync(service, "GetExternalIPAddress", [], "NewExternalIPAddress", cancellationToken).ConfigureAwait(false);
        if (!IPAddress.TryParse(externalText, out var external) || external.AddressFamily != AddressFamily.InterNetwork || external.Equals(IPAddress.Any))
        {
            return null;
        }

        int port = previous?.External.Port ?? internalPort;
        uint seconds = (uint)Math.Clamp(lifetime.TotalSeconds, 1, 604800);
        int? error = await AddAsync(service, port, internalPort, seconds, cancellationToken).ConfigureAwait(false);
        if (error == 725)
        {
            seconds = 0; // OnlyPermanentLeasesSupported
            error = await AddAsync(service, port, internalPort, seconds, cancellationToken).ConfigureAwait(false);
        }

        if (error == 718 && previous is null)
        {
            port = Random.Shared.Next(20000, 60000); // ConflictInMappingEntry: another host has that port
            error = await AddAsync(service, port, internalPort, seconds, cancellationToken).ConfigureAwait(false);
        }

        if (error is { } refused)
        {
            throw new PortMappingRefusedException(MeshPortMappingProtocol.Upnp, refused);
        }

        // A permanent mapping is renewed as if it lasted an hour, so a device that forgot it is asked again.
        return new PortMappingLease(MeshPortMappingProtocol.Upnp, new IPEndPoint(external, port), seconds == 0 ? TimeSpan.FromHours(1) : TimeSpan.FromSeconds(seconds), default);
    }

    /// <summary>Deletes the mapping of <paramref name="lease"/>'s external port; true when the device confirmed.</summary>
    public async Task<bool> DeleteAsync(PortMappingLease lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        if (await FindServiceAsync(cancellationToken).ConfigureAwait(false) is not { } service)
        {
            return false;
        }

        var (_, error) = await SoapAsync(
            service,
            "DeletePortMapping",
            [("NewRemoteHost", ""), ("NewExternalPort", lease.External.Port.ToString(CultureInfo.InvariantCulture)), ("NewProtocol", "UDP")],
            null,
            cancellationToken).ConfigureAwait(false);
        return error is null;
    }

    public void Dispose() => _http.Dispose();

    private async Task<int?> AddAsync((Uri Control, string ServiceType) service, int externalPort, ushort internalPort, uint seconds, CancellationToken cancellationToken)
    {
        var (_, error) = await SoapAsync(
            service,
            "AddPortMapping",
            [
                ("NewRemoteHost", ""),
                ("NewExternalPort", externalPort.ToString(CultureInfo.InvariantCulture)),
                ("NewProtocol", "UDP"),
                ("NewInternalPort", internalPort.ToString(CultureInfo.InvariantCulture)),
                ("NewInternalClient", _clientAddress.ToString()),
                ("NewEnabled", "1"),
                ("NewPortMappingDescription", Description),
                ("NewLeaseDuration", seconds.ToString(CultureInfo.InvariantCulture)),
            ],
            null,
            cancellationToken).ConfigureAwait(false);
        return error;
    }

    /// <summary>The connection service's control URL: SSDP, then the description (cached once found).</summary>
    private async Task<(Uri Control, string ServiceType)?> FindServiceAsync(CancellationToken cancellationToken)
    {
        if (_service is { } cached)
        {
            return cached;
        }

        if (await SearchAsync(cancellationToken).ConfigureAwait(false) is not { } location)
        {
            return null;
        }

        string xml;
        try
        {
            xml = await _http.GetStringAsync(location, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return null;
        }

        _service = ParseDescription(xml, location, _gateway);
        return _service;
    }

    /// <summary>Finds the connection service in a device description; its control URL must be on <paramref name="gateway"/>.</summary>
    internal static (Uri Control, string ServiceType)? ParseDescription(string xml, Uri location, IPAddress gateway)
    {
        var services = new List<(string Type, string Control)>();
        Uri baseUri = location;
        try
        {
            using var reader = XmlReader.Create(new StringReader(xml), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, MaxCharactersInDocument = MaxBody });
            string? type = null, control = null;
            reader.Read();
            while (!reader.EOF)
            {
                // ReadElementContentAsString leaves the reader on the next node already: no Read() after it.
                if (reader.NodeType == XmlNodeType.Element && reader.LocalName is "URLBase" or "serviceType" or "controlURL")
                {
                    string name = reader.LocalName;
                    string text = reader.ReadElementContentAsString().Trim();
                    switch (name)
                    {
                        case "URLBase" when Uri.TryCreate(text, UriKind.Absolute, out var b):
                            baseUri = b;
                            break;
                        case "serviceType":
                            type = text;
                            break;
                        case "controlURL":
                            control = text;
                            break;
                    }

                    continue;
                }

                if (reader.NodeType == XmlNodeType.Element && reader.LocalName == "service")
                {
                    type = control = null;
                }
                else if (reader.NodeType == XmlNodeType.EndElement && reader.LocalName == "service" && type is not null && control is not null)
                {
                    services.Add((type, control));
                }

                reader.Read();
            }
        }
        catch (XmlException)
        {
            return null;
        }

        foreach (string wanted in ServiceTypes)
        {
            foreach (var (type, control) in services)
            {
                if (type == wanted && Uri.TryCreate(baseUri, control, out var url) && url.Scheme == Uri.UriSchemeHttp
                    && IPAddress.TryParse(url.Host, out var host) && host.Equals(gateway))
                {
                    return (url, type);
                }
            }
        }

        return null;
    }

    /// <summary>An SSDP M-SEARCH for an IGD, unicast to the gateway (3 sends, 250 ms doubling); the LOCATION of the first answer from it.</summary>
    private async Task<Uri?> SearchAsync(CancellationToken cancellationToken)
    {
        using var socket = _createSocket(SocketType.Dgram);
        socket.Bind(new IPEndPoint(IPAddress.Any, 0));
        byte[] request = Encoding.ASCII.GetBytes(
            "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n\r\n");
        var target = new IPEndPoint(_gateway, SsdpPort);
        var buffer = new byte[2048];
        var wait = PortMappingClient.FirstWait;
        for (int attempt = 0; attempt < PortMappingClient.Attempts; attempt++)
        {
            await socket.SendToAsync(request, SocketFlags.None, target, cancellationToken).ConfigureAwait(false);
            using var timeout = new CancellationTokenSource(wait, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            try
            {
                while (true)
                {
                    var r = await socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), linked.Token).ConfigureAwait(false);
                    if (((IPEndPoint)r.RemoteEndPoint).Address.Equals(_gateway) && ParseLocation(buffer.AsSpan(0, r.ReceivedBytes), _gateway) is { } location)
                    {
                        return location;
                    }

                    _drops.Increment(DropReason.PortMappingUnmatched);
                }
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
            }

            wait *= 2;
        }

        return null;
    }

    /// <summary>The LOCATION of an SSDP "HTTP/1.1 200 OK" answer, when it is an http URL on <paramref name="gateway"/>.</summary>
    internal static Uri? ParseLocation(ReadOnlySpan<byte> datagram, IPAddress gateway)
    {
        string text = Encoding.ASCII.GetString(datagram);
        string[] lines = text.Split("\r\n");
        if (lines.Length < 2 || !lines[0].StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
        {
            return null;
        }

        foreach (string line in lines.Skip(1))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line.AsSpan(0, colon).Trim().Equals("LOCATION", StringComparison.OrdinalIgnoreCase)
                && Uri.TryCreate(line[(colon + 1)..].Trim(), UriKind.Absolute, out var url)
                && url.Scheme == Uri.UriSchemeHttp && IPAddress.TryParse(url.Host, out var host) && host.Equals(gateway))
            {
                return url;
            }
        }

        return null;
    }

    /// <summary>One SOAP action; the text of <paramref name="resultElement"/> (when asked) or the UPnP error code of a fault.</summary>
    private async Task<(string? Value, int? Error)> SoapAsync((Uri Control, string ServiceType) service, string action, (string Name, string Value)[] arguments, string? resultElement, CancellationToken cancellationToken)
    {
        var body = new StringBuilder();
        body.Append("<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>");
        body.Append(CultureInfo.InvariantCulture, $"<u:{action} xmlns:u=\"{service.ServiceType}\">");
        foreach (var (name, value) in arguments)
        {
            body.Append(CultureInfo.InvariantCulture, $"<{name}>{SecurityElement.Escape(value)}</{name}>");
        }

        body.Append(CultureInfo.InvariantCulture, $"</u:{action}></s:Body></s:Envelope>\r\n");
        using var request = new HttpRequestMessage(HttpMethod.Post, service.Control)
        {
            Content = new StringContent(body.ToString(), Encoding.UTF8, "text/xml"),
        };
        request.Headers.TryAddWithoutValidation("SOAPAction", $"\"{service.ServiceType}#{action}\"");
        try
        {
            using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            string xml = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (xml.Length > MaxBody)
            {
                return (null, -1);
            }

            string? errorCode = FindElement(xml, "errorCode");
            if (!response.IsSuccessStatusCode || errorCode is not null)
            {
                return (null, int.TryParse(errorCode, NumberStyles.Integer, CultureInfo.InvariantCulture, out int code) ? code : (int)response.StatusCode);
            }

            return (resultElement is null ? null : FindElement(xml, resultElement), null);
        }
        catch (Exception ex) when (ex is HttpRequestException || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return (null, -1);
        }
    }

    private static string? FindElement(string xml, string localName)
    {
        try
        {
            using var reader = XmlReader.Create(new StringReader(xml), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, MaxCharactersInDocument = MaxBody });
            while (reader.Read())
            {
                if (reader.NodeType == XmlNodeType.Element && reader.LocalName == localName)
                {
                    return reader.ReadElementContentAsString().Trim();
                }
            }
        }
        catch (XmlException)
        {
        }

        return null;
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        // Only the gateway is ever dialled, whatever a URL says.
        if (!IPAddress.TryParse(context.DnsEndPoint.Host, out var host) || !host.Equals(_gateway))
        {
            throw new HttpRequestException($"UPnP: {context.DnsEndPoint.Host} is not the gateway {_gateway}");
        }

        var socket = _createSocket(SocketType.Stream);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(host, context.DnsEndPoint.Port), cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
