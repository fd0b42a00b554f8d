using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;

namespace TunnelMesh.Net.Control;

/// <summary>The JSON settings of the control API (camelCase, as the coordinator writes).</summary>
internal static class ControlJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);
}

/// <summary>
/// The HTTP side of the coordinator's API for one node: join, endpoint updates, and opening the
/// peer map WebSocket. Failures the coordinator explains (RFC 9457 problem details) become a
/// <see cref="MeshControlException"/> with the reason; failures to reach it stay
/// <see cref="HttpRequestException"/>/<see cref="WebSocketException"/> (the caller retries).
/// </summary>
internal sealed class ControlClient : IDisposable
{
    private readonly Uri _api;
    private readonly TimeSpan _requestTimeout;
    private HttpClient _http;

    public ControlClient(Uri controlUrl, TimeSpan requestTimeout)
    {
        _api = new Uri(controlUrl.AbsoluteUri.TrimEnd('/') + "/api/v1/");
        _requestTimeout = requestTimeout;
        _http = new HttpClient { Timeout = requestTimeout };
    }

    /// <summary>
    /// Drops every pooled HTTP connection (one of the host's addresses went away: a pooled connection
    /// bound to it would hang until the request timeout). Requests in flight on the old connections fail.
    /// </summary>
    public void ResetConnections()
    {
        var old = Interlocked.Exchange(ref _http, new HttpClient { Timeout = _requestTimeout });
        old.CancelPendingRequests();
        old.Dispose();
    }

    /// <summary>The WebSocket address of the peer map stream.</summary>
    public Uri MapUri => new UriBuilder(new Uri(_api, "map")) { Scheme = _api.Scheme == Uri.UriSchemeHttps ? "wss" : "ws" }.Uri;

    public async Task<JoinResponse> JoinAsync(JoinRequest request, CancellationToken cancellationToken)
    {
        using var response = await Volatile.Read(ref _http).PostAsJsonAsync(new Uri(_api, "join"), request, ControlJson.Options, cancellationToken).ConfigureAwait(false);
        await ThrowIfRefusedAsync(response, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadFromJsonAsync<JoinResponse>(ControlJson.Options, cancellationToken).ConfigureAwait(false)
            ?? throw new MeshControlException(response.StatusCode, "the join answer was empty");
    }

    public async Task UpdateEndpointsAsync(string token, IReadOnlyList<string> endpoints, CancellationToken cancellationToken)
    {
        using var message = new HttpRequestMessage(HttpMethod.Put, new Uri(_api, "nodes/self/endpoints"))
        {
            Content = JsonContent.Create(new EndpointUpdate(endpoints), options: ControlJson.Options),
        };
        message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await Volatile.Read(ref _http).SendAsync(message, cancellationToken).ConfigureAwait(false);
        await ThrowIfRefusedAsync(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Opens the peer map stream; a refused upgrade becomes a <see cref="MeshControlException"/>.</summary>
    public async Task<ClientWebSocket> ConnectMapAsync(string token, TimeSpan keepAlive, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        try
        {
            socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
            socket.Options.KeepAliveInterval = keepAlive;
            socket.Options.KeepAliveTimeout = TimeSpan.FromSeconds(10); // a dead stream (lost address, NAT state gone) is noticed and reopened
            socket.Options.CollectHttpResponseDetails = true;
            await socket.ConnectAsync(MapUri, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch (WebSocketException ex) when (socket.HttpStatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.NotFound or HttpStatusCode.Gone)
        {
            var status = socket.HttpStatusCode;
            socket.Dispose();
            throw new MeshControlException(status, "the peer map stream was refused", ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Dispose() => Volatile.Read(ref _http).Dispose();

    private static async Task ThrowIfRefusedAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        (string? title, string? detail) = await ProblemDetailsReader.ReadAsync(response, cancellationToken).ConfigureAwait(false);
        string reason = ProblemDetailsReader.Reason(response, title, detail);
        throw new MeshControlException(response.StatusCode, reason);
    }
}
