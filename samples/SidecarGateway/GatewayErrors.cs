using System.Globalization;
using System.Net.Sockets;
using TunnelMesh.Net;
using Yarp.ReverseProxy.Forwarder;

namespace SidecarGateway;

/// <summary>
/// Turns a failure to reach a mesh service (YARP's <see cref="ForwarderError"/> and the exception
/// behind it) into a status code and a sentence for the client (never a stack trace).
/// </summary>
public static class GatewayErrors
{
    /// <summary>The detail for a node name the mesh does not know.</summary>
    /// <param name="node">The name from the request.</param>
    public static string NoSuchNode(string node) => $"no node named '{node}' in the mesh";

    /// <summary>Describes what went wrong while forwarding to <paramref name="route"/>.</summary>
    /// <param name="error">What YARP reports (<see cref="IForwarderErrorFeature.Error"/>).</param>
    /// <param name="exception">The exception behind it (<see cref="IForwarderErrorFeature.Exception"/>), if any.</param>
    /// <param name="route">Where the request was going.</param>
    /// <param name="peer">The peer's status at the time (null when unknown), to tell an offline node from a slow one.</param>
    /// <param name="options">The gateway's options, for the timeouts named in the message.</param>
    public static (int Status, string Detail) Describe(ForwarderError error, Exception? exception, GatewayRoute route, MeshPeerStatus? peer, GatewayOptions options)
    {
        ArgumentNullException.ThrowIfNull(route);
        ArgumentNullException.ThrowIfNull(options);
        string where = route.Node + ":" + route.Port.ToString(CultureInfo.InvariantCulture);
        bool connectTimedOut = false;
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case SocketException { SocketErrorCode: SocketError.HostNotFound }:
                    return (StatusCodes.Status502BadGateway, NoSuchNode(route.Node));
                case SocketException { SocketErrorCode: SocketError.ConnectionRefused }:
                    return (StatusCodes.Status502BadGateway, $"{where} refused the connection (nothing listens on port {route.Port.ToString(CultureInfo.InvariantCulture)} of that node)");
                case SocketException { SocketErrorCode: SocketError.HostUnreachable or SocketError.NetworkUnreachable } s:
                    return (StatusCodes.Status502BadGateway, $"{where} is unreachable: {s.Message}");
                case SocketException { SocketErrorCode: SocketError.TimedOut }:
                case TimeoutException: // SocketsHttpHandler.ConnectTimeout: a TaskCanceledException around a TimeoutException
                    connectTimedOut = true;
                    break;
                case SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.ConnectionAborted }:
                    return (StatusCodes.Status502BadGateway, $"{where} reset the connection before it answered");
                case HttpRequestException { HttpRequestError: HttpRequestError.ResponseEnded }:
                    return (StatusCodes.Status502BadGateway, $"{where} closed the connection before it answered");
                case HttpRequestException { HttpRequestError: HttpRequestError.InvalidResponse }:
                    return (StatusCodes.Status502BadGateway, $"{where} sent an invalid HTTP response");
                case HttpRequestException { HttpRequestError: HttpRequestError.HttpProtocolError } when route.Http2:
                    return (StatusCodes.Status502BadGateway, $"{where} broke off the HTTP/2 connection (does it speak HTTP/2 without TLS, h2c?)");
            }
        }

        if (connectTimedOut)
        {
            string seconds = Seconds(options.ConnectTimeout);
            return peer is { Online: false }
                ? (StatusCodes.Status502BadGateway, $"node '{route.Node}' is offline (the coordinator does not see it connected) and {where} did not answer within {seconds} s")
                : (StatusCodes.Status504GatewayTimeout, $"{where} did not answer within {seconds} s");
        }

        switch (error)
        {
            case ForwarderError.RequestTimedOut:
                return (StatusCodes.Status504GatewayTimeout, $"{where} accepted the connection but sent no response within {Seconds(options.ActivityTimeout)} s (Gateway:ActivityTimeout)");
            case ForwarderError.ResponseBodyDestination or ForwarderError.RequestBodyDestination:
                return (StatusCodes.Status502BadGateway, $"{where} broke off the exchange before it answered");
            case ForwarderError.UpgradeActivityTimeout:
                return (StatusCodes.Status504GatewayTimeout, $"the tunnel to {where} was idle for {Seconds(options.ActivityTimeout)} s (Gateway:ActivityTimeout)");
        }

        string message = exception is HttpRequestException { InnerException: { } cause } ? cause.Message : exception?.Message ?? error.ToString();
        return (StatusCodes.Status502BadGateway, $"{where} could not be reached: {message}");
    }

    private static string Seconds(TimeSpan time) => time.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture);
}
