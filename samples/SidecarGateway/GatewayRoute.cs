using System.Globalization;

namespace SidecarGateway;

/// <summary>Where one request goes: a mesh host (node name or address), a port, and the path and query to send there.</summary>
/// <param name="Node">The mesh name (or mesh IP literal) to dial.</param>
/// <param name="Port">The TCP port on that node.</param>
/// <param name="PathAndQuery">The request target sent upstream (starts with <c>/</c>).</param>
/// <param name="Prefix">In path mode the public prefix that was removed (<c>/homelab</c>), sent as <c>X-Forwarded-Prefix</c>; null in host mode.</param>
/// <param name="Http2">Whether the node is spoken to in HTTP/2 with prior knowledge (h2c) rather than HTTP/1.1.</param>
public sealed record GatewayRoute(string Node, int Port, string PathAndQuery, string? Prefix, bool Http2 = false)
{
    /// <summary>node:port, as used in error messages and the upstream <c>Host</c> header.</summary>
    public string Authority => Port == 80 ? Node : Node + ":" + Port.ToString(CultureInfo.InvariantCulture);
}

/// <summary>What <see cref="GatewayRouter.Route"/> decided.</summary>
public enum GatewayRouteKind
{
    /// <summary>Proxy to <see cref="GatewayRoute"/>.</summary>
    Proxy,

    /// <summary>Path mode and the path names no node (<c>/</c>): the gateway answers itself.</summary>
    Index,

    /// <summary>Nothing matches (path mode off and the host is not configured).</summary>
    NotFound,

    /// <summary>The first path segment is not a valid <c>node</c> or <c>node:port</c>.</summary>
    BadRequest,
}

/// <summary>Maps a request's host and raw target to a mesh node, port and path: host-header mode first, then path mode.</summary>
public static class GatewayRouter
{
    /// <summary>The URL scheme of a host target spoken to in HTTP/2 with prior knowledge, without TLS.</summary>
    public const string H2cScheme = "h2c";

    /// <summary>Routes a request.</summary>
    /// <param name="options">The gateway's options (hosts map, default port, path mode).</param>
    /// <param name="host">The request's host name, without the port.</param>
    /// <param name="rawTarget">The request target as the client sent it (path and query, still percent-encoded).</param>
    /// <param name="route">The route when the result is <see cref="GatewayRouteKind.Proxy"/>.</param>
    /// <param name="error">Why, when the result is <see cref="GatewayRouteKind.BadRequest"/>.</param>
    public static GatewayRouteKind Route(GatewayOptions options, string host, string rawTarget, out GatewayRoute? route, out string? error)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(rawTarget);
        route = null;
        error = null;
        if (rawTarget.Length == 0 || rawTarget[0] != '/')
        {
            rawTarget = "/" + rawTarget;
        }

        if (!string.IsNullOrEmpty(host) && options.Hosts.TryGetValue(host, out string? target) && Uri.TryCreate(target, UriKind.Absolute, out var uri))
        {
            string basePath = uri.AbsolutePath.TrimEnd('/');
            bool h2c = uri.Scheme == H2cScheme;
            int targetPort = uri.Port > 0 ? uri.Port : 80; // h2c:// has no default port of its own
            route = new GatewayRoute(uri.Host, targetPort, basePath + rawTarget, null, h2c);
            return GatewayRouteKind.Proxy;
        }

        if (!options.Routes)
        {
            return GatewayRouteKind.NotFound;
        }

        // "/<node>[:<port>]" followed by "/…", "?…" or nothing.
        int end = rawTarget.AsSpan(1).IndexOfAny('/', '?');
        end = end < 0 ? rawTarget.Length : end + 1;
        string segment = rawTarget[1..end];
        if (segment.Length == 0)
        {
            return GatewayRouteKind.Index;
        }

        string decoded = Uri.UnescapeDataString(segment);
        string node = decoded;
        int port = options.DefaultPort;
        int colon = decoded.LastIndexOf(':');
        if (colon >= 0)
        {
            node = decoded[..colon];
            if (!int.TryParse(decoded.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
            {
                error = $"'{decoded[(colon + 1)..]}' is not a port (1-65535) in '/{decoded}/'.";
                return GatewayRouteKind.BadRequest;
            }
        }

        if (!IsHostName(node))
        {
            error = $"'{node}' is not a node name: use /<node>/path or /<node>:<port>/path.";
            return GatewayRouteKind.BadRequest;
        }

        string rest = rawTarget[end..];
        if (rest.Length == 0 || rest[0] == '?')
        {
            rest = "/" + rest;
        }

        route = new GatewayRoute(node, port, rest, "/" + segment, options.PathModeH2c);
        return GatewayRouteKind.Proxy;
    }

    /// <summary>A DNS name made of labels (letters, digits, '-') or an IPv4 literal; nothing that could change the request line.</summary>
    public static bool IsHostName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length is 0 or > 253 || name[0] == '.' || name[0] == '-')
        {
            return false;
        }

        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '-' || c == '.'))
            {
                return false;
            }
        }

        return !name.Contains("..", StringComparison.Ordinal);
    }
}
