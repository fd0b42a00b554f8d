using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using TunnelMesh.Net.Control;
using TunnelMesh.Net.Server.Metrics;
using TunnelMesh.Net.Server.Stores;

namespace TunnelMesh.Net.Server.Api;

/// <summary>The handlers of the control API (docs/CONTROL-API.md). Every refusal is a problem details answer with the reason.</summary>
internal sealed class CoordinatorApi
{
    /// <summary>Most endpoints a node may report.</summary>
    public const int MaxEndpoints = 16;

    private const int MaxTags = 32;
    private const int MaxDescription = 1024;
    private const int MaxHostnameLength = 253;
    private static readonly long MaxKeyLifetimeSeconds = (long)TimeSpan.FromDays(3650).TotalSeconds;

    private readonly IMeshStore _store;
    private readonly CoordinatorSettings _settings;
    private readonly NodeAuthenticator _nodes;
    private readonly PeerMapBroadcaster _broadcaster;
    private readonly MapStreamHandler _streams;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CoordinatorMetrics _metrics;

    public CoordinatorApi(
        IMeshStore store,
        CoordinatorSettings settings,
        NodeAuthenticator nodes,
        PeerMapBroadcaster broadcaster,
        MapStreamHandler streams,
        TimeProvider time,
        ILogger<CoordinatorApi> logger,
        CoordinatorMetrics metrics)
    {
        _store = store;
        _settings = settings;
        _nodes = nodes;
        _broadcaster = broadcaster;
        _streams = streams;
        _time = time;
        _logger = logger;
        _metrics = metrics;
    }

    private long BodyLimit => _settings.Options.MaxRequestBodyBytes;

    // ---- nodes ----

    public async Task<IResult> JoinAsync(HttpContext context)
    {
        CancellationToken ct = context.RequestAborted;
        string? client = context.Connection.RemoteIpAddress?.ToString();
        (JoinRequest? request, IResult? problem) = await RequestBody.ReadJsonAsync<JoinRequest>(context, BodyLimit).ConfigureAwait(false);
        if (request is null)
        {
            _metrics.JoinRefused("bad request body");
            return problem!;
        }

        if (!IsNodeKey(request.NodeKey))
        {
            return Refuse(client, Problems.BadRequest("nodeKey: not a WireGuard public key (44 base64 characters encoding 32 bytes)."), "bad node key");
        }

        if (UnusableNodeKey(request.NodeKey) is { } keyProblem)
        {
            return Refuse(client, Problems.BadRequest($"nodeKey: {keyProblem}; no peer could use it."), "unusable node key");
        }

        if (string.IsNullOrWhiteSpace(request.Hostname) || request.Hostname.Length > MaxHostnameLength)
        {
            return Refuse(client, Problems.BadRequest($"hostname: required, at most {MaxHostnameLength} characters."), "bad hostname");
        }

        if (!TryParseEndpoints(request.Endpoints, out IReadOnlyList<string> endpoints, out string? endpointError))
        {
            return Refuse(client, Problems.BadRequest(endpointError), "bad endpoints");
        }

        long? authKeyId;
        if (request.AuthKey is not null)
        {
            (authKeyId, problem) = await CheckAuthKeyAsync(request.AuthKey, ct).ConfigureAwait(false);
            if (problem is not null)
            {
                return Refuse(client, problem, "auth key refused");
            }
        }
        else if (request.NodeToken is not null)
        {
            NodeRecord? known = await _store.GetNodeByKeyAsync(request.NodeKey, ct).ConfigureAwait(false);
            if (known is null
                || !BearerSecret.TryParse(request.NodeToken, BearerSecret.NodeTokenKind, out long tokenNodeId, out string secret)
                || tokenNodeId != known.Id
                || !BearerSecret.Matches(secret, known.TokenHash))
            {
                return Refuse(client, Problems.Unauthorized("node token invalid for this node key; join with an auth key."), "node token refused");
            }

            if (known.Expired is not null)
            {
                return Refuse(client, Problems.Forbidden("node expired; join again with an auth key."), "node expired");
            }

            authKeyId = null;
        }
        else
        {
            return Refuse(client, Problems.Unauthorized("authKey or nodeToken required."), "no credential");
        }

        if (_broadcaster.Current is { } map && map.Nodes.Count >= _settings.Options.MaxNodes
            && await _store.GetNodeByKeyAsync(request.NodeKey, ct).ConfigureAwait(false) is null)
        {
            return Refuse(client, Problems.Conflict($"The mesh is full (MaxNodes {_settings.Options.MaxNodes})."), "mesh full");
        }

        (string tokenSecret, byte[] tokenHash) = BearerSecret.NewSecret();
        var command = new JoinCommand(
            authKeyId,
            request.NodeKey,
            NameRules.Normalize(request.Hostname),
            endpoints,
            tokenHash,
            _time.GetUtcNow(),
            _settings.Prefix4,
            _settings.Prefix6,
            request.Ephemeral);
        JoinResult result = await _store.JoinAsync(command, ct).ConfigureAwait(false);
        if (result.Node is not { } node || result.Status is not (JoinStatus.Joined or JoinStatus.Rejoined))
        {
            IResult refusal = result.Status switch
            {
                JoinStatus.KeyNotFound => Problems.Unauthorized("auth key not found."),
                JoinStatus.KeyRevoked => Problems.Forbidden("auth key revoked."),
                JoinStatus.KeyExpired => Problems.Forbidden("auth key expired."),
                JoinStatus.KeyUsed => Problems.Forbidden("auth key already used (one-shot)."),
                JoinStatus.AddressesExhausted => Problems.Conflict($"No free address left in {_settings.Prefix4}."),
                JoinStatus.UnknownNode => Problems.Unauthorized("unknown node key; join with an auth key."),
                _ => Problems.Create(StatusCodes.Status500InternalServerError, "The store gave no node for the join."),
            };
            return Refuse(client, refusal, result.Status.ToString());
        }

        Log.NodeJoined(_logger, node.Id, node.Name, node.Address4.ToString(), result.Status.ToString(), authKeyId);
        _metrics.JoinAccepted(rejoined: result.Status == JoinStatus.Rejoined);
        long version = await _store.GetVersionAsync(ct).ConfigureAwait(false);
        IReadOnlyList<NodeRecord> all = await _store.ListNodesAsync(ct).ConfigureAwait(false);
        var response = new JoinResponse(
            _settings.ToInfo(node),
            BearerSecret.Format(BearerSecret.NodeTokenKind, node.Id, tokenSecret),
            _settings.Mesh,
            _settings.Snapshot(version, all, node.Id));
        return Results.Json(response, ApiJson.Options);
    }

    public async Task<IResult> MapAsync(HttpContext context)
    {
        NodeRecord? node = await _nodes.AuthenticateAsync(context, context.RequestAborted).ConfigureAwait(false);
        if (node is null)
        {
            Log.NodeTokenRefused(_logger, context.Request.Method, context.Request.Path, context.Connection.RemoteIpAddress?.ToString());
            return Problems.Unauthorized("node token missing, invalid, or its node expired or deleted.");
        }

        if (!context.WebSockets.IsWebSocketRequest)
        {
            return Problems.BadRequest("GET /map is a WebSocket: send an upgrade request.");
        }

        using System.Net.WebSockets.WebSocket socket = await context.WebSockets.AcceptWebSocketAsync(
            new WebSocketAcceptContext
            {
                // Pings every interval; a node that does not answer within two intervals is dropped (and so marked offline).
                KeepAliveInterval = _settings.Options.MapKeepAliveInterval,
                KeepAliveTimeout = _settings.Options.MapKeepAliveInterval * 2,
            }).ConfigureAwait(false);
        await _streams.RunAsync(socket, node, context.RequestAborted).ConfigureAwait(false);
        return Results.Empty;
    }

    public async Task<IResult> UpdateEndpointsAsync(HttpContext context)
    {
        NodeRecord? node = await _nodes.AuthenticateAsync(context, context.RequestAborted).ConfigureAwait(false);
        if (node is null)
        {
            Log.NodeTokenRefused(_logger, context.Request.Method, context.Request.Path, context.Connection.RemoteIpAddress?.ToString());
            return Problems.Unauthorized("node token missing, invalid, or its node expired or deleted.");
        }

        (EndpointUpdate? update, IResult? problem) = await RequestBody.ReadJsonAsync<EndpointUpdate>(context, BodyLimit).ConfigureAwait(false);
        if (update is null)
        {
            return problem!;
        }

        if (!TryParseEndpoints(update.Endpoints, out IReadOnlyList<string> endpoints, out string? error))
        {
            return Problems.BadRequest(error);
        }

        if (!await _store.UpdateEndpointsAsync(node.Id, endpoints, context.RequestAborted).ConfigureAwait(false))
        {
            return Problems.NotFound("node deleted.");
        }

        Log.EndpointsUpdated(_logger, node.Id, endpoints.Count);
        return Results.NoContent();
    }

    public async Task<IResult> HealthAsync(HttpContext context)
    {
        try
        {
            long version = await _store.GetVersionAsync(context.RequestAborted).ConfigureAwait(false);
            int nodes = (await _store.ListNodesAsync(context.RequestAborted).ConfigureAwait(false)).Count;
            return Results.Json(new HealthResponse("ok", version, nodes), ApiJson.Options);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.HealthFailed(_logger, ex);
            return Problems.Create(StatusCodes.Status503ServiceUnavailable, "The store does not answer.");
        }
    }

    // ---- admin ----

    /// <summary>The admin endpoints' gate: the admin credential as a bearer token, or 401.</summary>
    public IResult? CheckAdmin(HttpContext context)
    {
        if (_settings.IsAdminCredential(NodeAuthenticator.BearerToken(context.Request)))
        {
            return null;
        }

        Log.AdminRefused(_logger, context.Request.Method, context.Request.Path, context.Connection.RemoteIpAddress?.ToString());
        return Problems.Unauthorized("admin credential missing or wrong (Authorization: Bearer <admin credential>).");
    }

    public async Task<IResult> CreateAuthKeyAsync(HttpContext context)
    {
        (CreateAuthKeyRequest? request, IResult? problem) =
            await RequestBody.ReadJsonAsync<CreateAuthKeyRequest>(context, BodyLimit, allowEmpty: true).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        request ??= new CreateAuthKeyRequest();
        if (request.ExpiresInSeconds is { } s && (s < 1 || s > MaxKeyLifetimeSeconds))
        {
            return Problems.BadRequest($"expiresInSeconds: {s} is outside 1..{MaxKeyLifetimeSeconds}.");
        }

        IReadOnlyList<string> tags = request.Tags ?? [];
        if (tags.Count > MaxTags)
        {
            return Problems.BadRequest($"tags: at most {MaxTags}.");
        }

        foreach (string tag in tags)
        {
            if (tag is null || !tag.StartsWith("tag:", StringComparison.Ordinal) || !NameRules.IsValid(tag[4..]))
            {
                return Problems.BadRequest($"tags: '{tag}' is not tag:<name> (a lowercase DNS label).");
            }
        }

        if (request.Description is { Length: > MaxDescription })
        {
            return Problems.BadRequest($"description: at most {MaxDescription} characters.");
        }

        DateTimeOffset now = _time.GetUtcNow();
        TimeSpan lifetime = request.ExpiresInSeconds is { } secs ? TimeSpan.FromSeconds(secs) : _settings.Options.DefaultAuthKeyLifetime;
        (string secret, byte[] hash) = BearerSecret.NewSecret();
        AuthKeyRecord key = await _store.CreateAuthKeyAsync(
            new NewAuthKey(hash, request.Reusable, request.Ephemeral, [.. tags], request.Description, now, now + lifetime),
            context.RequestAborted).ConfigureAwait(false);
        Log.AuthKeyCreated(_logger, key.Id, key.Reusable, key.Ephemeral, key.Expires);
        var created = new CreatedAuthKey(BearerSecret.Format(BearerSecret.AuthKeyKind, key.Id, secret), CoordinatorSettings.ToInfo(key));
        return Results.Json(created, ApiJson.Options, statusCode: StatusCodes.Status201Created);
    }

    public async Task<IResult> ListAuthKeysAsync(HttpContext context)
    {
        IReadOnlyList<AuthKeyRecord> keys = await _store.ListAuthKeysAsync(context.RequestAborted).ConfigureAwait(false);
        return Results.Json(keys.Select(CoordinatorSettings.ToInfo).ToList(), ApiJson.Options);
    }

    public async Task<IResult> RevokeAuthKeyAsync(HttpContext context, long id)
    {
        if (!await _store.RevokeAuthKeyAsync(id, _time.GetUtcNow(), context.RequestAborted).ConfigureAwait(false))
        {
            return Problems.NotFound(string.Create(CultureInfo.InvariantCulture, $"No auth key {id}."));
        }

        Log.AuthKeyRevoked(_logger, id);
        return Results.NoContent();
    }

    public async Task<IResult> ListNodesAsync(HttpContext context)
    {
        IReadOnlyList<NodeRecord> nodes = await _store.ListNodesAsync(context.RequestAborted).ConfigureAwait(false);
        return Results.Json(nodes.Select(_settings.ToInfo).ToList(), ApiJson.Options);
    }

    public async Task<IResult> GetNodeAsync(HttpContext context, long id)
    {
        NodeRecord? node = await _store.GetNodeAsync(id, context.RequestAborted).ConfigureAwait(false);
        return node is null ? NoNode(id) : Results.Json(_settings.ToInfo(node), ApiJson.Options);
    }

    public async Task<IResult> RenameNodeAsync(HttpContext context, long id)
    {
        (RenameNodeRequest? request, IResult? problem) = await RequestBody.ReadJsonAsync<RenameNodeRequest>(context, BodyLimit).ConfigureAwait(false);
        if (request is null)
        {
            return problem!;
        }

        if (!NameRules.IsValid(request.Name))
        {
            return Problems.BadRequest($"name: '{request.Name}' is not a DNS label (lowercase letters, digits, inner hyphens; 1-63 characters).");
        }

        RenameStatus status = await _store.RenameNodeAsync(id, request.Name, context.RequestAborted).ConfigureAwait(false);
        switch (status)
        {
            case RenameStatus.NotFound:
                return NoNode(id);
            case RenameStatus.NameTaken:
                return Problems.Conflict($"name: '{request.Name}' belongs to another node.");
        }

        Log.NodeRenamed(_logger, id, request.Name);
        return await GetNodeAsync(context, id).ConfigureAwait(false);
    }

    public async Task<IResult> DeleteNodeAsync(HttpContext context, long id)
    {
        if (!await _store.DeleteNodeAsync(id, context.RequestAborted).ConfigureAwait(false))
        {
            return NoNode(id);
        }

        Log.NodeDeleted(_logger, id);
        return Results.NoContent();
    }

    public async Task<IResult> ExpireNodeAsync(HttpContext context, long id)
    {
        if (!await _store.ExpireNodeAsync(id, _time.GetUtcNow(), context.RequestAborted).ConfigureAwait(false))
        {
            return NoNode(id);
        }

        Log.NodeExpired(_logger, id);
        return Results.NoContent();
    }

    // ---- checks ----

    private async Task<(long? Id, IResult? Problem)> CheckAuthKeyAsync(string text, CancellationToken ct)
    {
        if (!BearerSecret.TryParse(text, BearerSecret.AuthKeyKind, out long id, out string secret))
        {
            return (null, Problems.Unauthorized("auth key malformed (expected tmkey-<id>-<secret>)."));
        }

        AuthKeyRecord? key = await _store.GetAuthKeyAsync(id, ct).ConfigureAwait(false);
        if (key is null || !BearerSecret.Matches(secret, key.SecretHash))
        {
            // One answer for both, so the reply does not tell which key ids exist.
            return (null, Problems.Unauthorized("auth key not found."));
        }

        if (key.Revoked is not null)
        {
            return (null, Problems.Forbidden("auth key revoked."));
        }

        if (key.Expires <= _time.GetUtcNow())
        {
            return (null, Problems.Forbidden("auth key expired."));
        }

        if (!key.Reusable && key.Uses > 0)
        {
            return (null, Problems.Forbidden("auth key already used (one-shot)."));
        }

        return (id, null);
    }

    private IResult Refuse(string? client, IResult problem, string reason)
    {
        Log.JoinRefused(_logger, client, reason);
        _metrics.JoinRefused(reason);
        return problem;
    }

    private static IResult NoNode(long id) => Problems.NotFound(string.Create(CultureInfo.InvariantCulture, $"No node {id}."));

    /// <summary>Whether the text is a WireGuard public key: 44 base64 characters encoding 32 bytes.</summary>
    internal static bool IsNodeKey(string? key)
    {
        Span<byte> bytes = stackalloc byte[33];
        return key is { Length: 44 } && Convert.TryFromBase64String(key, bytes, out int n) && n == 32;
    }

    /// <summary>Why a well-formed node key cannot be used (small order, non-canonical), or null.</summary>
    internal static string? UnusableNodeKey(string key)
    {
        Span<byte> bytes = stackalloc byte[33];
        return Convert.TryFromBase64String(key, bytes, out int n) && n == 32
            ? TunnelMesh.Net.WireGuard.Crypto.PublicKeyCheck.Problem(bytes[..32])
            : "not 32 bytes";
    }

    /// <summary>Parses "ip:port" endpoints (port 1-65535, at most <see cref="MaxEndpoints"/>) into their canonical text.</summary>
    internal static bool TryParseEndpoints(IReadOnlyList<string>? input, out IReadOnlyList<string> endpoints, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? error)
    {
        endpoints = [];
        error = null;
        if (input is null)
        {
            return true;
        }

        if (input.Count > MaxEndpoints)
        {
            error = $"endpoints: {input.Count} given, at most {MaxEndpoints}.";
            return false;
        }

        var list = new List<string>(input.Count);
        for (int i = 0; i < input.Count; i++)
        {
            string? s = input[i];
            if (s is null || s.Length > 64 || !IPEndPoint.TryParse(s, out IPEndPoint? ep) || ep.Port == 0 || (ep.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && !s.StartsWith('[')))
            {
                error = $"endpoints[{i}]: '{Truncate(s)}' is not ip:port ([ipv6]:port for IPv6).";
                return false;
            }

            string text = ep.ToString();
            if (!list.Contains(text))
            {
                list.Add(text);
            }
        }

        endpoints = list;
        return true;
    }

    private static string? Truncate(string? s) => s is { Length: > 64 } ? s[..64] + "…" : s;
}
