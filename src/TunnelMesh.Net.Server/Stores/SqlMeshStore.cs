using System.Data.Common;
using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace TunnelMesh.Net.Server.Stores;

/// <summary>
/// What <see cref="SqliteMeshStore"/> and <see cref="PostgresMeshStore"/> share: the SQL (the
/// two schemas have the same tables and columns), row mapping, the join decision (auth key checks,
/// the lowest free address, a unique name), write transactions that bump the map version, and
/// <see cref="WaitForChangeAsync"/>. A database supplies connections, its write lock, how it stores
/// times and string lists, and how other replicas learn of a change. Only those two stores derive from it.
/// </summary>
/// <remarks>
/// Tables: <c>auth_keys</c>, <c>nodes</c> (with the requested <c>hostname</c> beside the unique
/// <c>name</c>, and the address as an index into the prefix, <see cref="NameRules.Address4At"/>,
/// so the lowest free address is the first gap in SQL) and <c>mesh_state</c>, one row with the map
/// version. Unique constraints on the public key, the name and the IPv4 address back up the
/// allocation, which runs under the database's write lock.
/// </remarks>
public abstract class SqlMeshStore : IMeshStore
{
    private const string NodeColumns =
        "id, name, public_key, address4, address6, endpoints, tags, ephemeral, auth_key_id, token_hash, created, last_seen, online, expired, version";

    private const string AuthKeyColumns = "id, secret_hash, reusable, ephemeral, tags, description, created, expires, revoked, uses";

    // The shortest a name's stem gets in a clash candidate (NameRules.WithSuffix shortens the base
    // so that "-n" fits, for any int n, and trims one trailing hyphen): every candidate for a
    // hostname starts with its first StemLength characters.
    private const int StemLength = NameRules.MaxLength - 12;

    private readonly ChangeSignal changes = new();
    private readonly CancellationTokenSource disposing = new();
    private readonly Lock feedLock = new();
    private readonly TimeSpan pollInterval;
    private long knownVersion = -1;
    private Task? poller;
    private int disposed;

    private protected SqlMeshStore(TimeSpan pollInterval, ILogger? logger)
    {
        this.pollInterval = pollInterval;
        Logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Where the store's background work reports problems.</summary>
    private protected ILogger Logger { get; }

    /// <summary>Cancelled when the store is disposed.</summary>
    private protected CancellationToken Disposing => disposing.Token;

    /// <summary>Opens a connection from the pool.</summary>
    private protected abstract ValueTask<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken);

    /// <summary>Begins a write transaction that holds the database's write lock from its start.</summary>
    private protected abstract Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>Waits for this instance's turn to write (SQLite queues its callers in process instead of spinning on SQLITE_BUSY).</summary>
    private protected virtual ValueTask EnterWriteGateAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>Ends this instance's turn to write.</summary>
    private protected virtual void ExitWriteGate()
    {
    }

    /// <summary>Runs inside the transaction that moved the version to <paramref name="version"/>, before it commits (PostgreSQL: NOTIFY).</summary>
    private protected virtual Task OnVersionBumpedAsync(DbConnection connection, DbTransaction transaction, long version, CancellationToken cancellationToken) =>
        Task.CompletedTask;

    /// <summary>Starts what brings other replicas' changes to <see cref="Observe"/> faster than the poll (PostgreSQL: the LISTEN loop); called once.</summary>
    private protected virtual void StartNotifications()
    {
    }

    /// <summary>Waits for the background work started by <see cref="StartNotifications"/> to end (after <see cref="Disposing"/> was cancelled).</summary>
    private protected virtual Task StopNotificationsAsync() => Task.CompletedTask;

    /// <summary>The stored form of a time.</summary>
    private protected abstract object TimeValue(DateTimeOffset time);

    /// <summary>Reads a stored time.</summary>
    private protected abstract DateTimeOffset ReadTime(DbDataReader reader, int ordinal);

    /// <summary>Adds a parameter holding a list of strings as JSON.</summary>
    private protected abstract void AddJsonParameter(DbCommand command, string name, IReadOnlyList<string> values);

    /// <summary>Releases what the derived store holds (after waiters and background loops were cancelled).</summary>
    private protected virtual ValueTask ReleaseAsync() => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public abstract Task InitializeAsync(CancellationToken cancellationToken = default);

    /// <inheritdoc/>
    public Task<AuthKeyRecord> CreateAuthKeyAsync(NewAuthKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        return WriteAsync(async w =>
        {
            using var cmd = w.Command(
                "INSERT INTO auth_keys (secret_hash, reusable, ephemeral, tags, description, created, expires, uses) " +
                "VALUES (@hash, @reusable, @ephemeral, @tags, @description, @created, @expires, 0) RETURNING id");
            Add(cmd, "@hash", key.SecretHash);
            Add(cmd, "@reusable", key.Reusable);
            Add(cmd, "@ephemeral", key.Ephemeral);
            AddJsonParameter(cmd, "@tags", key.Tags);
            Add(cmd, "@description", key.Description);
            Add(cmd, "@created", key.Created);
            Add(cmd, "@expires", key.Expires);
            long id = Convert.ToInt64(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
            return new AuthKeyRecord(id, key.SecretHash, key.Reusable, key.Ephemeral, [.. key.Tags], key.Description, key.Created, key.Expires, null, 0);
        }, cancellationToken);
    }

    /// <inheritdoc/>
    public async Task<AuthKeyRecord?> GetAuthKeyAsync(long id, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        return await ReadAuthKeyAsync(c, null, id, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<AuthKeyRecord>> ListAuthKeysAsync(CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        using var cmd = NewCommand(c, null, $"SELECT {AuthKeyColumns} FROM auth_keys ORDER BY id");
        return await ReadAllAsync(cmd, ReadAuthKey, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public Task<bool> RevokeAuthKeyAsync(long id, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        WriteAsync(async w =>
        {
            using var cmd = w.Command("UPDATE auth_keys SET revoked = COALESCE(revoked, @now) WHERE id = @id");
            Add(cmd, "@now", now);
            Add(cmd, "@id", id);
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
        }, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>
    /// A known node that joins with an auth key takes that key's tags and ephemeral flag and loses
    /// an administrator's expiry; one that re-joins without a key (by its token) keeps its tags,
    /// its ephemeral flag and any expiry (the caller sees <see cref="NodeRecord.Expired"/> and refuses it).
    /// A node keeps its name while it asks for the same host name as last time (so a rename by an
    /// administrator sticks); when it asks for another one it gets that, or the first free clash suffix.
    /// </remarks>
    public Task<JoinResult> JoinAsync(JoinCommand command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        string hostname = NameRules.Normalize(command.Hostname);
        return WriteAsync(async w =>
        {
            AuthKeyRecord? key = null;
            if (command.AuthKeyId is long keyId)
            {
                key = await ReadAuthKeyAsync(w.Connection, w.Transaction, keyId, cancellationToken).ConfigureAwait(false);
                if (JoinRules.Refusal(key, command.Now) is JoinStatus refused)
                {
                    return new JoinResult(refused, null);
                }
            }

            (long Id, string Hostname)? known = null;
            using (var find = w.Command("SELECT id, hostname FROM nodes WHERE public_key = @key"))
            {
                Add(find, "@key", command.PublicKey);
                using var r = await find.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    known = (r.GetInt64(0), r.GetString(1));
                }
            }

            if (known is null && key is null)
            {
                return new JoinResult(JoinStatus.UnknownNode, null);
            }

            long nodeId;
            JoinStatus status;
            if (known is { } node)
            {
                nodeId = node.Id;
                status = JoinStatus.Rejoined;
                string? newName = node.Hostname == hostname
                    ? null
                    : await FreeNameAsync(w, hostname, node.Id, cancellationToken).ConfigureAwait(false);
                long version = await w.BumpVersionAsync(cancellationToken).ConfigureAwait(false);
                using var update = w.Command(
                    "UPDATE nodes SET name = COALESCE(@name, name), hostname = @hostname, endpoints = @endpoints, token_hash = @token, " +
                    (key is null ? "" : "tags = @tags, ephemeral = @ephemeral, auth_key_id = @authKey, expired = NULL, ") +
                    "version = @version WHERE id = @id");
                Add(update, "@name", newName);
                Add(update, "@hostname", hostname);
                AddJsonParameter(update, "@endpoints", command.Endpoints);
                Add(update, "@token", command.TokenHash);
                if (key is not null)
                {
                    AddJsonParameter(update, "@tags", key.Tags);
                    Add(update, "@ephemeral", key.Ephemeral || command.Ephemeral);
                    Add(update, "@authKey", key.Id);
                }

                Add(update, "@version", version);
                Add(update, "@id", nodeId);
                await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                long index = await LowestFreeIndexAsync(w, cancellationToken).ConfigureAwait(false);
                if (index >= NameRules.UsableCount(command.Prefix4))
                {
                    return new JoinResult(JoinStatus.AddressesExhausted, null);
                }

                IPAddress address4 = NameRules.Address4At(command.Prefix4, index);
                IPAddress address6 = NameRules.Address6For(command.Prefix6, address4);
                string name = await FreeNameAsync(w, hostname, null, cancellationToken).ConfigureAwait(false);
                long version = await w.BumpVersionAsync(cancellationToken).ConfigureAwait(false);
                using var insert = w.Command(
                    "INSERT INTO nodes (name, hostname, public_key, address_index, address4, address6, endpoints, tags, ephemeral, auth_key_id, token_hash, created, online, version) " +
                    "VALUES (@name, @hostname, @key, @index, @address4, @address6, @endpoints, @tags, @ephemeral, @authKey, @token, @now, @online, @version) RETURNING id");
                Add(insert, "@name", name);
                Add(insert, "@hostname", hostname);
                Add(insert, "@key", command.PublicKey);
                Add(insert, "@index", index);
                Add(insert, "@address4", address4.ToString());
                Add(insert, "@address6", address6.ToString());
                AddJsonParameter(insert, "@endpoints", command.Endpoints);
                AddJsonParameter(insert, "@tags", key!.Tags);
                Add(insert, "@ephemeral", key.Ephemeral || command.Ephemeral);
                Add(insert, "@authKey", key.Id);
                Add(insert, "@token", command.TokenHash);
                Add(insert, "@now", command.Now);
                Add(insert, "@online", false);
                Add(insert, "@version", version);
                nodeId = Convert.ToInt64(await insert.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
                status = JoinStatus.Joined;
            }

            if (key is not null)
            {
                using var use = w.Command("UPDATE auth_keys SET uses = uses + 1 WHERE id = @id");
                Add(use, "@id", key.Id);
                await use.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            return new JoinResult(status, await ReadNodeAsync(w.Connection, w.Transaction, nodeId, cancellationToken).ConfigureAwait(false));
        }, cancellationToken);
    }

    /// <inheritdoc/>
    public async Task<NodeRecord?> GetNodeAsync(long id, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        return await ReadNodeAsync(c, null, id, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<NodeRecord?> GetNodeByKeyAsync(string publicKey, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        using var cmd = NewCommand(c, null, $"SELECT {NodeColumns} FROM nodes WHERE public_key = @key");
        Add(cmd, "@key", publicKey);
        var nodes = await ReadAllAsync(cmd, ReadNode, cancellationToken).ConfigureAwait(false);
        return nodes.Count == 0 ? null : nodes[0];
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<NodeRecord>> ListNodesAsync(CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        using var cmd = NewCommand(c, null, $"SELECT {NodeColumns} FROM nodes ORDER BY id");
        return await ReadAllAsync(cmd, ReadNode, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The name is not a valid label (<see cref="NameRules.IsValid"/>).</exception>
    public Task<RenameStatus> RenameNodeAsync(long id, string name, CancellationToken cancellationToken = default)
    {
        if (!NameRules.IsValid(name))
        {
            throw new ArgumentException("The name must be one DNS label (see NameRules).", nameof(name));
        }

        return WriteAsync(async w =>
        {
            NodeRecord? node = await ReadNodeAsync(w.Connection, w.Transaction, id, cancellationToken).ConfigureAwait(false);
            if (node is null)
            {
                return RenameStatus.NotFound;
            }

            if (node.Name == name)
            {
                return RenameStatus.Renamed;
            }

            using (var taken = w.Command("SELECT COUNT(*) FROM nodes WHERE name = @name"))
            {
                Add(taken, "@name", name);
                if (Convert.ToInt64(await taken.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) > 0)
                {
                    return RenameStatus.NameTaken;
                }
            }

            await UpdateNodeAsync(w, id, "name = @name", cmd => Add(cmd, "@name", name), cancellationToken).ConfigureAwait(false);
            return RenameStatus.Renamed;
        }, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<bool> DeleteNodeAsync(long id, CancellationToken cancellationToken = default) =>
        WriteAsync(async w =>
        {
            using var cmd = w.Command("DELETE FROM nodes WHERE id = @id");
            Add(cmd, "@id", id);
            if (await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                return false;
            }

            await w.BumpVersionAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>Expiring an expired node keeps the first time and changes nothing.</remarks>
    public Task<bool> ExpireNodeAsync(long id, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        WriteAsync(async w =>
        {
            NodeRecord? node = await ReadNodeAsync(w.Connection, w.Transaction, id, cancellationToken).ConfigureAwait(false);
            if (node is null)
            {
                return false;
            }

            if (node.Expired is null)
            {
                await UpdateNodeAsync(w, id, "expired = @now", cmd => Add(cmd, "@now", now), cancellationToken).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>The same endpoints again change nothing (no new version).</remarks>
    public Task<bool> UpdateEndpointsAsync(long id, IReadOnlyList<string> endpoints, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return WriteAsync(async w =>
        {
            NodeRecord? node = await ReadNodeAsync(w.Connection, w.Transaction, id, cancellationToken).ConfigureAwait(false);
            if (node is null)
            {
                return false;
            }

            if (!node.Endpoints.SequenceEqual(endpoints, StringComparer.Ordinal))
            {
                await UpdateNodeAsync(w, id, "endpoints = @endpoints", cmd => AddJsonParameter(cmd, "@endpoints", endpoints), cancellationToken).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<bool> SetOnlineAsync(long id, bool online, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        WriteAsync(
            w => UpdateNodeAsync(w, id, "online = @online, last_seen = @now", cmd =>
            {
                Add(cmd, "@online", online);
                Add(cmd, "@now", now);
            }, cancellationToken),
            cancellationToken);

    /// <inheritdoc/>
    /// <remarks>A node that never connected counts as offline since it was created.</remarks>
    public Task<int> DeleteEphemeralOfflineAsync(DateTimeOffset offlineBefore, CancellationToken cancellationToken = default) =>
        WriteAsync(async w =>
        {
            using var cmd = w.Command("DELETE FROM nodes WHERE ephemeral AND NOT online AND COALESCE(last_seen, created) < @before");
            Add(cmd, "@before", offlineBefore);
            int deleted = await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            if (deleted > 0)
            {
                await w.BumpVersionAsync(cancellationToken).ConfigureAwait(false);
            }

            return deleted;
        }, cancellationToken);

    /// <inheritdoc/>
    public async Task<long> GetVersionAsync(CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        using var cmd = NewCommand(c, null, "SELECT version FROM mesh_state WHERE id = 1");
        long version = Convert.ToInt64(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        Observe(version);
        return version;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Waiters share one view of the version: changes through this instance update it when they
    /// commit; changes through another instance (another process or replica) arrive through the
    /// database's notification, if it has one, and through one background read of the version every
    /// 250 ms (SQLite) or 500 ms (PostgreSQL), however many callers wait. The first wait reads the
    /// version itself.
    /// </remarks>
    public async Task<long> WaitForChangeAsync(long afterVersion, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        StartChangeFeed();
        if (Volatile.Read(ref knownVersion) < 0)
        {
            await GetVersionAsync(cancellationToken).ConfigureAwait(false);
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, disposing.Token);
        while (true)
        {
            Task changed = changes.Next; // taken before reading, so a change in between is not missed
            long known = Volatile.Read(ref knownVersion);
            if (known > afterVersion)
            {
                return known;
            }

            try
            {
                await changed.WaitAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ObjectDisposedException(GetType().Name);
            }
        }
    }

    /// <summary>Stops waiters and background work and releases the connections; safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        await disposing.CancelAsync().ConfigureAwait(false);
        Task? running;
        lock (feedLock)
        {
            running = poller;
        }

        if (running is not null)
        {
            await running.ConfigureAwait(false); // ends on the Disposing token; never throws
            await StopNotificationsAsync().ConfigureAwait(false);
        }

        await ReleaseAsync().ConfigureAwait(false);
        disposing.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Records a version seen in the database; wakes the waiters when it is newer than any seen before.</summary>
    private protected void Observe(long version)
    {
        long seen = Volatile.Read(ref knownVersion);
        while (version > seen)
        {
            long prior = Interlocked.CompareExchange(ref knownVersion, version, seen);
            if (prior == seen)
            {
                changes.Notify();
                return;
            }

            seen = prior;
        }
    }

    /// <summary>Adds a parameter, storing times in the database's form.</summary>
    private protected void Add(DbCommand command, string name, object? value)
    {
        var p = command.CreateParameter();
        p.ParameterName = name;
        p.Value = value switch
        {
            null => DBNull.Value,
            DateTimeOffset t => TimeValue(t),
            _ => value,
        };
        command.Parameters.Add(p);
    }

    private static DbCommand NewCommand(DbConnection connection, DbTransaction? transaction, string sql)
    {
        var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = transaction;
        return cmd;
    }

    private ValueTask<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        return OpenConnectionAsync(cancellationToken);
    }

    /// <summary>Runs <paramref name="body"/> in a write transaction; commits, then wakes this instance's waiters if the version moved.</summary>
    private async Task<T> WriteAsync<T>(Func<WriteContext, Task<T>> body, CancellationToken cancellationToken)
    {
        await EnterWriteGateAsync(cancellationToken).ConfigureAwait(false);
        long? bumped;
        T result;
        try
        {
            var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var cScope = c.ConfigureAwait(false);
            var tx = await BeginWriteAsync(c, cancellationToken).ConfigureAwait(false);
            await using var txScope = tx.ConfigureAwait(false);
            var w = new WriteContext(c, tx);
            result = await body(w).ConfigureAwait(false);
            bumped = w.Version;
            if (bumped is long v)
            {
                await OnVersionBumpedAsync(c, tx, v, cancellationToken).ConfigureAwait(false);
            }

            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ExitWriteGate();
        }

        if (bumped is long committed)
        {
            Observe(committed);
        }

        return result;
    }

    /// <summary>Starts the version poll (and the database's notifications) once, at the first wait.</summary>
    private void StartChangeFeed()
    {
        lock (feedLock)
        {
            if (poller is not null || disposing.IsCancellationRequested)
            {
                return;
            }

            poller = Task.Run(() => PollAsync(disposing.Token));
            StartNotifications();
        }
    }

    /// <summary>Reads the version every poll interval until the store is disposed; a failed read is logged and retried.</summary>
    private async Task PollAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(pollInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                try
                {
                    await GetVersionAsync(stop).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is DbException or IOException or InvalidOperationException or TimeoutException && !stop.IsCancellationRequested)
                {
                    StoreLog.VersionPollFailed(Logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (ObjectDisposedException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Sets columns of an existing node and gives it the new version; false when there is no such node.</summary>
    private async Task<bool> UpdateNodeAsync(WriteContext w, long id, string assignments, Action<DbCommand> parameters, CancellationToken cancellationToken)
    {
        using (var exists = w.Command("SELECT COUNT(*) FROM nodes WHERE id = @id"))
        {
            Add(exists, "@id", id);
            if (Convert.ToInt64(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) == 0)
            {
                return false;
            }
        }

        long version = await w.BumpVersionAsync(cancellationToken).ConfigureAwait(false);
        using var cmd = w.Command($"UPDATE nodes SET {assignments}, version = @version WHERE id = @id");
        parameters(cmd);
        Add(cmd, "@version", version);
        Add(cmd, "@id", id);
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>The first free address index: 0, or the first index after a taken one that is not taken.</summary>
    private static async Task<long> LowestFreeIndexAsync(WriteContext w, CancellationToken cancellationToken)
    {
        using var cmd = w.Command(
            "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM nodes WHERE address_index = 0) THEN 0 " +
            "ELSE (SELECT MIN(n.address_index) + 1 FROM nodes n WHERE NOT EXISTS (SELECT 1 FROM nodes m WHERE m.address_index = n.address_index + 1)) END");
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The first of hostname, hostname-2, … that no node other than <paramref name="self"/> has.</summary>
    private async Task<string> FreeNameAsync(WriteContext w, string hostname, long? self, CancellationToken cancellationToken)
    {
        string stem = hostname.Length > StemLength ? hostname[..StemLength] : hostname;
        using var cmd = w.Command("SELECT name FROM nodes WHERE substr(name, 1, @length) = @stem AND id <> @self");
        Add(cmd, "@length", stem.Length);
        Add(cmd, "@stem", stem);
        Add(cmd, "@self", self ?? -1L);
        var taken = new HashSet<string>(StringComparer.Ordinal);
        using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            taken.Add(r.GetString(0));
        }

        return JoinRules.FirstFreeName(hostname, taken);
    }

    private async Task<NodeRecord?> ReadNodeAsync(DbConnection c, DbTransaction? tx, long id, CancellationToken cancellationToken)
    {
        using var cmd = NewCommand(c, tx, $"SELECT {NodeColumns} FROM nodes WHERE id = @id");
        Add(cmd, "@id", id);
        var nodes = await ReadAllAsync(cmd, ReadNode, cancellationToken).ConfigureAwait(false);
        return nodes.Count == 0 ? null : nodes[0];
    }

    private async Task<AuthKeyRecord?> ReadAuthKeyAsync(DbConnection c, DbTransaction? tx, long id, CancellationToken cancellationToken)
    {
        using var cmd = NewCommand(c, tx, $"SELECT {AuthKeyColumns} FROM auth_keys WHERE id = @id");
        Add(cmd, "@id", id);
        var keys = await ReadAllAsync(cmd, ReadAuthKey, cancellationToken).ConfigureAwait(false);
        return keys.Count == 0 ? null : keys[0];
    }

    private static async Task<IReadOnlyList<T>> ReadAllAsync<T>(DbCommand cmd, Func<DbDataReader, T> map, CancellationToken cancellationToken)
    {
        var list = new List<T>();
        using var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(map(r));
        }

        return list;
    }

    private NodeRecord ReadNode(DbDataReader r) => new(
        Id: r.GetInt64(0),
        Name: r.GetString(1),
        PublicKey: r.GetString(2),
        Address4: IPAddress.Parse(r.GetString(3)),
        Address6: IPAddress.Parse(r.GetString(4)),
        Endpoints: StringListJson.Parse(r.GetString(5)),
        Tags: StringListJson.Parse(r.GetString(6)),
        Ephemeral: r.GetBoolean(7),
        AuthKeyId: r.IsDBNull(8) ? null : r.GetInt64(8),
        TokenHash: r.GetFieldValue<byte[]>(9),
        Created: ReadTime(r, 10),
        LastSeen: r.IsDBNull(11) ? null : ReadTime(r, 11),
        Online: r.GetBoolean(12),
        Expired: r.IsDBNull(13) ? null : ReadTime(r, 13),
        Version: r.GetInt64(14));

    private AuthKeyRecord ReadAuthKey(DbDataReader r) => new(
        Id: r.GetInt64(0),
        SecretHash: r.GetFieldValue<byte[]>(1),
        Reusable: r.GetBoolean(2),
        Ephemeral: r.GetBoolean(3),
        Tags: StringListJson.Parse(r.GetString(4)),
        Description: r.IsDBNull(5) ? null : r.GetString(5),
        Created: ReadTime(r, 6),
        Expires: ReadTime(r, 7),
        Revoked: r.IsDBNull(8) ? null : ReadTime(r, 8),
        Uses: r.GetInt64(9));

    /// <summary>One write transaction: its connection, and the version it moved to (once per transaction).</summary>
    private sealed class WriteContext(DbConnection connection, DbTransaction transaction)
    {
        public DbConnection Connection { get; } = connection;

        public DbTransaction Transaction { get; } = transaction;

        public long? Version { get; private set; }

        public DbCommand Command(string sql) => NewCommand(Connection, Transaction, sql);

        public async Task<long> BumpVersionAsync(CancellationToken cancellationToken)
        {
            if (Version is long v)
            {
                return v;
            }

            using var cmd = Command("UPDATE mesh_state SET version = version + 1 WHERE id = 1 RETURNING version");
            Version = Convert.ToInt64(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
            return Version.Value;
        }
    }
}
