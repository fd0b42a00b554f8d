using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using TunnelMesh.Net.Control;

namespace TunnelMesh.Net.Admin;

/// <summary>
/// A typed client of the coordinator's admin API (<c>/api/v1/authkeys</c>, <c>/api/v1/nodes</c>;
/// docs/CONTROL-API.md): create, list and revoke auth keys; list, find, rename, expire and delete
/// nodes; wait for a node to come online. It is what a PaaS or an operator's tooling uses to enroll
/// machines into a mesh and remove them again (docs/PAAS.md).
/// </summary>
/// <remarks>
/// <para>Every request carries the admin credential as <c>Authorization: Bearer …</c>. It is never
/// part of an exception message, and this client writes no logs.</para>
/// <para>A refusal by the coordinator (an RFC 9457 problem details answer) throws
/// <see cref="MeshAdminException"/> with the status code and the coordinator's reason. Not reaching
/// the coordinator throws <see cref="HttpRequestException"/>; a request that outlives the
/// <see cref="HttpClient"/>'s timeout throws <see cref="TaskCanceledException"/>.</para>
/// <para>The client is safe to use from several threads at once and to dispose twice.</para>
/// </remarks>
/// <example>
/// <code>
/// using var admin = new MeshAdminClient(new Uri("https://mesh.example.com"), adminCredential);
/// CreatedAuthKey key = await admin.CreateAuthKeyAsync(new MeshAuthKeyOptions { Ephemeral = true, Tags = ["tag:customer-42"] }, ct);
/// // … the customer's machine joins with key.Key as "homelab-42" …
/// MeshNodeInfo node = await admin.WaitForNodeAsync("homelab-42", online: true, TimeSpan.FromMinutes(5), ct);
/// await admin.DeleteNodeAsync(node.Id, ct);
/// </code>
/// </example>
public sealed class MeshAdminClient : IDisposable
{
    /// <summary>How often <see cref="WaitForNodeAsync"/> asks the coordinator.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>The request timeout of the <see cref="HttpClient"/> this client makes itself (the constructor taking a URL).</summary>
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan DefaultWaitTimeout = TimeSpan.FromMinutes(1);

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly Uri _api;
    private readonly AuthenticationHeaderValue _authorization;
    private volatile bool _disposed;

    /// <summary>Creates a client for the coordinator at <paramref name="coordinatorUrl"/>.</summary>
    /// <param name="coordinatorUrl">The coordinator's base URL (http or https), the same a node's <see cref="MeshNodeOptions.ControlUrl"/> has; the API is under <c>/api/v1</c> below it.</param>
    /// <param name="adminCredential">The coordinator's admin credential (<c>MeshCoordinatorOptions.AdminCredential</c>).</param>
    /// <param name="handler">The handler requests go through (e.g. a test server's, or one with a client certificate); default a new <see cref="SocketsHttpHandler"/>. It is disposed with this client, as <see cref="HttpClient"/> does.</param>
    /// <exception cref="ArgumentException">The URL is not an absolute http or https URL, or the credential is empty or contains control characters.</exception>
    public MeshAdminClient(Uri coordinatorUrl, string adminCredential, HttpMessageHandler? handler = null)
        : this(handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: true), ownsHttp: true, coordinatorUrl, adminCredential)
    {
        _http.Timeout = DefaultRequestTimeout;
    }

    /// <summary>
    /// Creates a client that sends its requests through <paramref name="httpClient"/> (for example one
    /// from <c>IHttpClientFactory</c>). The client's <see cref="HttpClient.BaseAddress"/> and default
    /// headers are not used or changed, and it is not disposed with this client.
    /// </summary>
    /// <param name="httpClient">The HTTP client to send through; its timeout applies.</param>
    /// <param name="coordinatorUrl">The coordinator's base URL (http or https); the API is under <c>/api/v1</c> below it.</param>
    /// <param name="adminCredential">The coordinator's admin credential.</param>
    /// <exception cref="ArgumentException">The URL is not an absolute http or https URL, or the credential is empty or contains control characters.</exception>
    public MeshAdminClient(HttpClient httpClient, Uri coordinatorUrl, string adminCredential)
        : this(httpClient ?? throw new ArgumentNullException(nameof(httpClient)), ownsHttp: false, coordinatorUrl, adminCredential)
    {
    }

    private MeshAdminClient(HttpClient http, bool ownsHttp, Uri coordinatorUrl, string adminCredential)
    {
        try
        {
            ArgumentNullException.ThrowIfNull(coordinatorUrl);
            ArgumentException.ThrowIfNullOrWhiteSpace(adminCredential);
            if (!coordinatorUrl.IsAbsoluteUri || coordinatorUrl.Scheme is not ("http" or "https"))
            {
                throw new ArgumentException($"The coordinator URL '{coordinatorUrl}' is not an absolute http or https URL.", nameof(coordinatorUrl));
            }

            if (adminCredential.Any(char.IsControl) || adminCredential.Trim().Length != adminCredential.Length)
            {
                // The message must not repeat the credential.
                throw new ArgumentException("The admin credential must not contain control characters or surrounding white space.", nameof(adminCredential));
            }
        }
        catch
        {
            if (ownsHttp)
            {
                http.Dispose();
            }

            throw;
        }

        _http = http;
        _ownsHttp = ownsHttp;
        _api = new Uri(coordinatorUrl.GetLeftPart(UriPartial.Path).TrimEnd('/') + "/api/v1/");
        _authorization = new AuthenticationHeaderValue("Bearer", adminCredential);
    }

    /// <summary>The coordinator's API base this client sends to (<c>…/api/v1/</c>).</summary>
    public Uri ApiUrl => _api;

    // ---- auth keys ----

    /// <summary>Creates an auth key. The answer is the only time the whole key (<see cref="CreatedAuthKey.Key"/>) is shown: hand it to the machine that joins, do not log it.</summary>
    /// <param name="options">Reusable or one-shot, ephemeral, lifetime, tags, description.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The key (<c>tmkey-&lt;id&gt;-&lt;secret&gt;</c>) and its listing (<see cref="AuthKeyInfo.Id"/> to revoke it).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="MeshAuthKeyOptions.ExpiresIn"/> is not positive.</exception>
    /// <exception cref="MeshAdminException">The coordinator refused: 400 with the field (<c>tags: …</c>, <c>expiresInSeconds: …</c>, <c>description: …</c>), 401 wrong credential.</exception>
    public async Task<CreatedAuthKey> CreateAuthKeyAsync(MeshAuthKeyOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        long? seconds = null;
        if (options.ExpiresIn is { } expiresIn)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(expiresIn, TimeSpan.Zero, nameof(options));
            seconds = (long)Math.Min(Math.Ceiling(expiresIn.TotalSeconds), long.MaxValue);
        }

        var request = new CreateAuthKeyRequest(options.Reusable, options.Ephemeral, seconds, options.Tags, options.Description);
        using HttpResponseMessage response = await SendAsync(
            HttpMethod.Post, "authkeys", JsonContent.Create(request, options: ControlJson.Options), "creating an auth key", cancellationToken).ConfigureAwait(false);
        return await ReadAsync<CreatedAuthKey>(response, "creating an auth key", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Lists every auth key (valid, expired and revoked), never their secrets.</summary>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="MeshAdminException">The coordinator refused (401 wrong credential).</exception>
    public async Task<IReadOnlyList<AuthKeyInfo>> ListAuthKeysAsync(CancellationToken cancellationToken = default)
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Get, "authkeys", null, "listing auth keys", cancellationToken).ConfigureAwait(false);
        return await ReadAsync<List<AuthKeyInfo>>(response, "listing auth keys", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Revokes an auth key: no further joins with it. Nodes that already joined stay. Revoking twice keeps the first time.</summary>
    /// <param name="id">The key's id (<see cref="AuthKeyInfo.Id"/>).</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="MeshAdminException">The coordinator refused: 404 no such key, 401 wrong credential.</exception>
    public async Task RevokeAuthKeyAsync(long id, CancellationToken cancellationToken = default)
    {
        string operation = Invariant($"revoking auth key {id}");
        using HttpResponseMessage response = await SendAsync(HttpMethod.Delete, Invariant($"authkeys/{id}"), null, operation, cancellationToken).ConfigureAwait(false);
    }

    // ---- nodes ----

    /// <summary>Lists every node the coordinator knows, expired ones too (<see cref="MeshNodeInfo.Expired"/>).</summary>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="MeshAdminException">The coordinator refused (401 wrong credential).</exception>
    public async Task<IReadOnlyList<MeshNodeInfo>> ListNodesAsync(CancellationToken cancellationToken = default)
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Get, "nodes", null, "listing nodes", cancellationToken).ConfigureAwait(false);
        return await ReadAsync<List<MeshNodeInfo>>(response, "listing nodes", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One node by its id.</summary>
    /// <param name="id">The node's id (<see cref="MeshNodeInfo.Id"/>).</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="MeshAdminException">The coordinator refused: 404 no such node (<see cref="MeshAdminException.IsNotFound"/>), 401 wrong credential.</exception>
    public async Task<MeshNodeInfo> GetNodeAsync(long id, CancellationToken cancellationToken = default)
    {
        string operation = Invariant($"getting node {id}");
        using HttpResponseMessage response = await SendAsync(HttpMethod.Get, Invariant($"nodes/{id}"), null, operation, cancellationToken).ConfigureAwait(false);
        return await ReadAsync<MeshNodeInfo>(response, operation, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The node with this name (<c>homelab-42</c>, any case), FQDN (<c>homelab-42.tunnelmesh</c>) or
    /// WireGuard public key (base64), or null when there is none. Asks for the whole node list.
    /// </summary>
    /// <param name="nameOrPublicKey">A name, an FQDN or a public key.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="MeshAdminException">The coordinator refused (401 wrong credential).</exception>
    public async Task<MeshNodeInfo?> FindNodeAsync(string nameOrPublicKey, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nameOrPublicKey);
        IReadOnlyList<MeshNodeInfo> nodes = await ListNodesAsync(cancellationToken).ConfigureAwait(false);
        return Find(nodes, nameOrPublicKey);
    }

    /// <summary>The node with this public key (e.g. <see cref="MeshNode.PublicKey"/>), or null when there is none.</summary>
    /// <param name="publicKey">The node's WireGuard public key.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="MeshAdminException">The coordinator refused (401 wrong credential).</exception>
    public Task<MeshNodeInfo?> FindNodeAsync(NodePublicKey publicKey, CancellationToken cancellationToken = default)
    {
        if (!publicKey.IsSet)
        {
            throw new ArgumentException("The public key is not set.", nameof(publicKey));
        }

        return FindNodeAsync(publicKey.ToString(), cancellationToken);
    }

    /// <summary>Renames a node; peers learn the new name with the next peer map delta.</summary>
    /// <param name="id">The node's id.</param>
    /// <param name="name">The new name: a DNS label (lowercase letters, digits, inner hyphens; 1–63 characters) no other node has.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The node as renamed.</returns>
    /// <exception cref="MeshAdminException">The coordinator refused: 400 not a DNS label, 409 the name is taken, 404 no such node.</exception>
    public async Task<MeshNodeInfo> RenameNodeAsync(long id, string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        string operation = Invariant($"renaming node {id}");
        using HttpResponseMessage response = await SendAsync(
            HttpMethod.Patch, Invariant($"nodes/{id}"), JsonContent.Create(new RenameNodeRequest(name), options: ControlJson.Options), operation, cancellationToken).ConfigureAwait(false);
        return await ReadAsync<MeshNodeInfo>(response, operation, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Deletes a node: its address becomes free, every peer drops it from its map within a second or
    /// so, and its map stream is closed. Its node token stops working; joining again needs an auth key.
    /// </summary>
    /// <param name="id">The node's id.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="MeshAdminException">The coordinator refused: 404 no such node, 401 wrong credential.</exception>
    public async Task DeleteNodeAsync(long id, CancellationToken cancellationToken = default)
    {
        string operation = Invariant($"deleting node {id}");
        using HttpResponseMessage response = await SendAsync(HttpMethod.Delete, Invariant($"nodes/{id}"), null, operation, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Expires a node: it leaves every peer map and its token stops working, but its record (id,
    /// name, addresses) stays; joining again with an auth key revives it with the same address.
    /// </summary>
    /// <param name="id">The node's id.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="MeshAdminException">The coordinator refused: 404 no such node, 401 wrong credential.</exception>
    public async Task ExpireNodeAsync(long id, CancellationToken cancellationToken = default)
    {
        string operation = Invariant($"expiring node {id}");
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, Invariant($"nodes/{id}/expire"), null, operation, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Waits until the node named <paramref name="name"/> (or with that FQDN or public key) exists, is
    /// not expired, and is online (holds a map stream to the coordinator) — or, with
    /// <paramref name="online"/> false, is offline. Asks the coordinator every
    /// <see cref="PollInterval"/> until <paramref name="timeout"/> has passed.
    /// </summary>
    /// <param name="name">The node's name, FQDN or public key.</param>
    /// <param name="online">Wait for online (default) or for offline.</param>
    /// <param name="timeout">How long to wait at most; default one minute.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The node as last seen, in the state waited for.</returns>
    /// <exception cref="TimeoutException">The node was not in that state before the timeout; the message says what was seen last.</exception>
    /// <exception cref="MeshAdminException">The coordinator refused (401 wrong credential).</exception>
    public async Task<MeshNodeInfo> WaitForNodeAsync(string name, bool online = true, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        TimeSpan limit = timeout ?? DefaultWaitTimeout;
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(limit, TimeSpan.Zero, nameof(timeout));
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limit);
        MeshNodeInfo? last = null;
        try
        {
            while (true)
            {
                last = await FindNodeAsync(name, deadline.Token).ConfigureAwait(false);
                if (last is { Expired: false } node && node.Online == online)
                {
                    return node;
                }

                await Task.Delay(PollInterval, deadline.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            string seen = last is null ? "no such node" : last.Expired ? "it is expired" : last.Online ? "it is online" : "it is offline";
            throw new TimeoutException(Invariant($"Node '{name}' was not {(online ? "online" : "offline")} within {limit.TotalSeconds:0.###} s: {seen}."));
        }
    }

    /// <summary>Releases the HTTP client this client made (not one passed in). Safe to call twice.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    /// <summary>The node in <paramref name="nodes"/> with this name, FQDN or public key.</summary>
    internal static MeshNodeInfo? Find(IReadOnlyList<MeshNodeInfo> nodes, string nameOrPublicKey)
    {
        string wanted = nameOrPublicKey.Trim().TrimEnd('.');
        foreach (MeshNodeInfo node in nodes)
        {
            if (string.Equals(node.PublicKey, wanted, StringComparison.Ordinal)
                || string.Equals(node.Name, wanted, StringComparison.OrdinalIgnoreCase)
                || string.Equals(node.Fqdn, wanted, StringComparison.OrdinalIgnoreCase))
            {
                return node;
            }
        }

        return null;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, HttpContent? content, string operation, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var request = new HttpRequestMessage(method, new Uri(_api, path)) { Content = content };
        request.Headers.Authorization = _authorization;
        request.Headers.Accept.ParseAdd("application/json");
        HttpResponseMessage response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            (string? title, string? detail) = await ProblemDetailsReader.ReadAsync(response, cancellationToken).ConfigureAwait(false);
            throw new MeshAdminException(operation, response.StatusCode, title ?? response.ReasonPhrase, detail);
        }
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, string operation, CancellationToken cancellationToken)
        where T : class =>
        await response.Content.ReadFromJsonAsync<T>(ControlJson.Options, cancellationToken).ConfigureAwait(false)
            ?? throw new MeshAdminException(operation, response.StatusCode, null, "the coordinator's answer was empty");

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
