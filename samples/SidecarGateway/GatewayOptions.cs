namespace SidecarGateway;

/// <summary>
/// Settings of the gateway, bound from the configuration section <c>Gateway</c> (appsettings.json,
/// environment <c>Gateway__DefaultPort</c>, or <c>--Gateway:DefaultPort=8080</c>).
/// </summary>
public sealed class GatewayOptions
{
    /// <summary>The configuration section the options are read from.</summary>
    public const string Section = "Gateway";

    /// <summary>The public address(es) Kestrel listens on, separated by <c>;</c>.</summary>
    /// <remarks>Default <c>http://127.0.0.1:5080</c>. Use <c>http://0.0.0.0:80</c> to expose it.</remarks>
    public string Urls { get; set; } = "http://127.0.0.1:5080";

    /// <summary>The port on the mesh node that <c>/&lt;node&gt;/…</c> goes to when the path names no port.</summary>
    /// <remarks>Default 80.</remarks>
    public int DefaultPort { get; set; } = 80;

    /// <summary>Whether path mode is on: <c>/&lt;node&gt;/rest</c> and <c>/&lt;node&gt;:&lt;port&gt;/rest</c> go to that node.</summary>
    /// <remarks>Default true. When false only <see cref="Hosts"/> are served; every other request gets 404.</remarks>
    public bool Routes { get; set; } = true;

    /// <summary>Whether path mode speaks HTTP/2 with prior knowledge (h2c) to the nodes instead of HTTP/1.1.</summary>
    /// <remarks>
    /// Default false (HTTP/1.1). Every service reached in path mode must then speak h2c; for single
    /// services use an <c>h2c://</c> target in <see cref="Hosts"/> instead.
    /// </remarks>
    public bool PathModeH2c { get; set; }

    /// <summary>
    /// Host-header mode: a public host name (as the client sends it in <c>Host</c>, without the port)
    /// mapped to a target URL on the mesh, e.g. <c>"grafana.example.com": "http://grafana:3000"</c>.
    /// The whole path and query are appended to the target's path. A configured host name wins over path mode.
    /// </summary>
    /// <remarks>
    /// Default empty. Targets are <c>http://</c> (HTTP/1.1 to the node) or <c>h2c://</c> (HTTP/2 with
    /// prior knowledge, without TLS, as Traefik writes it); port 80 when the URL names none.
    /// </remarks>
    public IDictionary<string, string> Hosts { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>How long to wait for the TCP connection to a mesh node before answering 504 (502 when the coordinator reports the node offline).</summary>
    /// <remarks>Default 10 seconds.</remarks>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long the node may stay silent: until its response headers arrive, and then between two reads
    /// or writes of a body or of a WebSocket tunnel (YARP's <c>ForwarderRequestConfig.ActivityTimeout</c>).
    /// No response headers in time is a 504; a body or tunnel that goes quiet is cut off.
    /// </summary>
    /// <remarks>Default 100 seconds (YARP's default).</remarks>
    public TimeSpan ActivityTimeout { get; set; } = TimeSpan.FromSeconds(100);

    /// <summary>The largest request body the gateway forwards, in bytes; null for no limit.</summary>
    /// <remarks>Default null (no limit; bodies are streamed, never buffered). Kestrel's own default would be 30 MB.</remarks>
    public long? MaxRequestBodySize { get; set; }

    /// <summary>Checks the options; returns the problems found (empty when valid).</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (DefaultPort is < 1 or > 65535)
        {
            problems.Add($"Gateway:DefaultPort must be 1-65535 (it is {DefaultPort}).");
        }

        if (ConnectTimeout <= TimeSpan.Zero)
        {
            problems.Add("Gateway:ConnectTimeout must be positive.");
        }

        if (ActivityTimeout <= TimeSpan.Zero)
        {
            problems.Add("Gateway:ActivityTimeout must be positive.");
        }

        foreach (var (host, target) in Hosts)
        {
            if (!Uri.TryCreate(target, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or GatewayRouter.H2cScheme) || !string.IsNullOrEmpty(uri.Query))
            {
                problems.Add($"Gateway:Hosts:{host} must be an http:// or h2c:// URL without a query, like http://grafana:3000 (it is '{target}').");
            }
        }

        return problems;
    }
}
