using System.Globalization;
using System.Net.Sockets;
using TunnelMesh.Net;

namespace SidecarGateway;

/// <summary>Turns a failure to reach a mesh service into a status code and a sentence for the client (never a stack trace).</summary>
public static class GatewayErrors
{
    /// <summary>The detail for a node name the mesh does not know.</summary>
    public static string NoSuchNode(string node) => $"no node named '{node}' in the mesh";

    /// <summary>Describes <paramref name="exception"/>, raised while connecting to or talking with <paramref name="route"/>.</summary>
    /// <param name="exception">What went wrong.</param>
    /// <param name="route">Where the request was going.</param>
    /// <param name="peer">The peer's status at the time (null when unknown), to tell an offline node from a slow one.</param>
    /// <param name="connectTimeout">The configured connect timeout, for the message.</param>
    public static (int Status, string Detail) Describe(Exception exception, GatewayRoute route, MeshPeerStatus? peer, TimeSpan connectTimeout)
    {
        ArgumentNullException.ThrowIfNull(exception);
        ArgumentNullException.ThrowIfNull(route);
        string where = route.Node + ":" + route.Port.ToString(CultureInfo.InvariantCulture);
        bool timedOut = false;
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
                case TimeoutException:
                case OperationCanceledException:
                    timedOut = true;
                    break;
                case SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.ConnectionAborted }:
                    return (StatusCodes.Status502BadGateway, $"{where} reset the connection before it answered");
                case HttpRequestException { HttpRequestError: HttpRequestError.ResponseEnded }:
                    return (StatusCodes.Status502BadGateway, $"{where} closed the connection before it answered");
                case HttpRequestException { HttpRequestError: HttpRequestError.InvalidResponse }:
                    return (StatusCodes.Status502BadGateway, $"{where} sent an invalid HTTP response");
            }
        }

        if (timedOut)
        {
            string seconds = connectTimeout.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture);
            return peer is { Online: false }
                ? (StatusCodes.Status502BadGateway, $"node '{route.Node}' is offline (the coordinator does not see it connected) and {where} did not answer within {seconds} s")
                : (StatusCodes.Status504GatewayTimeout, $"{where} did not answer within {seconds} s");
        }

        string message = exception is HttpRequestException { InnerException: { } inner } ? inner.Message : exception.Message;
        return (StatusCodes.Status502BadGateway, $"{where} could not be reached: {message}");
    }
}
