using System.Net.Http.Headers;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Forwarder;

namespace SidecarGateway;

/// <summary>
/// YARP's transforms for one routed request: the headers copied by YARP (hop-by-hop ones left out,
/// X-Forwarded-For/-Proto/-Host added), then what only the route knows: the upstream target as the
/// client sent it (the <c>/node</c> prefix removed, percent-encoding kept), <c>X-Forwarded-Prefix</c>,
/// and the headers that <c>Connection</c> names, which are hop-by-hop too (RFC 9110 section 7.6.1)
/// but which YARP copies.
/// </summary>
internal sealed class GatewayTransformer(HttpTransformer inner, GatewayRoute route) : HttpTransformer
{
    private const string ForwardedPrefix = "X-Forwarded-Prefix";

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        await inner.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken).ConfigureAwait(false);
        foreach (string name in ListedHeaders(httpContext.Request.Headers.Connection))
        {
            Remove(proxyRequest, name);
        }

        // Never the client's own value: in host mode there is no prefix, in path mode it is the route's.
        Remove(proxyRequest, ForwardedPrefix);
        if (route.Prefix is not null)
        {
            proxyRequest.Headers.TryAddWithoutValidation(ForwardedPrefix, route.Prefix);
        }

        proxyRequest.RequestUri = new Uri(destinationPrefix + route.PathAndQuery, UriKind.Absolute);
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        bool copyBody = await inner.TransformResponseAsync(httpContext, proxyResponse, cancellationToken).ConfigureAwait(false);
        if (proxyResponse is not null && proxyResponse.Headers.NonValidated.TryGetValues("Connection", out HeaderStringValues connection))
        {
            foreach (string name in ListedHeaders(new StringValues([.. connection])))
            {
                if (!name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase))
                {
                    httpContext.Response.Headers.Remove(name);
                }
            }
        }

        return copyBody;
    }

    public override ValueTask TransformResponseTrailersAsync(HttpContext httpContext, HttpResponseMessage proxyResponse, CancellationToken cancellationToken) =>
        inner.TransformResponseTrailersAsync(httpContext, proxyResponse, cancellationToken);

    /// <summary>The header names a <c>Connection</c> value lists (comma-separated tokens), less its own options.</summary>
    internal static IEnumerable<string> ListedHeaders(StringValues connection)
    {
        foreach (string? value in connection)
        {
            if (value is null)
            {
                continue;
            }

            foreach (string token in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!token.Equals("close", StringComparison.OrdinalIgnoreCase) && !token.Equals("keep-alive", StringComparison.OrdinalIgnoreCase))
                {
                    yield return token;
                }
            }
        }
    }

    private static void Remove(HttpRequestMessage request, string name)
    {
        if (!request.Headers.Remove(name))
        {
            request.Content?.Headers.Remove(name);
        }
    }
}
