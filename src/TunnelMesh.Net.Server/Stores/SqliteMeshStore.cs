using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace TunnelMesh.Net.Server.Stores;

/// <summary>
/// The default store: one SQLite file (WAL mode). Writes run in <c>BEGIN IMMEDIATE</c>
/// transactions, queued in process so concurrent callers wait their turn instead of meeting
/// SQLITE_BUSY; other processes on the same file wait up to the busy timeout. Changes made through
/// another instance on the same file are seen by <see cref="SqlMeshStore.WaitForChangeAsync"/>
/// within 250 ms (it reads the version); changes through this instance wake it at once.
/// </summary>
/// <remarks>
/// Times are stored as UTC ticks (100 ns), tags and endpoints as JSON text. Call
/// <see cref="InitializeAsync"/> once before anything else.
/// </remarks>
public sealed class SqliteMeshStore : SqlMeshStore
{
    /// <summary>How long a write waits for another process's write to finish.</summary>
    private const int BusyTimeoutMilliseconds = 30_000;

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS auth_keys (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            secret_hash BLOB NOT NULL,
            reusable INTEGER NOT NULL,
            ephemeral INTEGER NOT NULL,
            tags TEXT NOT NULL,
            description TEXT NULL,
            created INTEGER NOT NULL,
            expires INTEGER NOT NULL,
            revoked INTEGER NULL,
            uses INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE IF NOT EXISTS nodes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            hostname TEXT NOT NULL,
            public_key TEXT NOT NULL UNIQUE,
            address_index INTEGER NOT NULL UNIQUE,
            address4 TEXT NOT NULL UNIQUE,
            address6 TEXT NOT NULL,
            endpoints TEXT NOT NULL,
            tags TEXT NOT NULL,
            ephemeral INTEGER NOT NULL,
            auth_key_id INTEGER NULL REFERENCES auth_keys (id) ON DELETE SET NULL,
            token_hash BLOB NOT NULL,
            created INTEGER NOT NULL,
            last_seen INTEGER NULL,
            online INTEGER NOT NULL DEFAULT 0,
            expired INTEGER NULL,
            version INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS mesh_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL);
        INSERT INTO mesh_state (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
        """;

    private readonly string connectionString;
    private readonly SemaphoreSlim writeGate = new(1, 1);

    /// <summary>A store in one file.</summary>
    /// <param name="pathOrConnectionString">
    /// A file path, or a Microsoft.Data.Sqlite connection string (<c>Data Source=/var/lib/mesh/mesh.db</c>;
    /// anything with an <c>=</c> is taken as one). The file is created if missing; in-memory databases are refused.
    /// </param>
    /// <param name="logger">Where problems of the background version poll go.</param>
    public SqliteMeshStore(string pathOrConnectionString, ILogger<SqliteMeshStore>? logger = null)
        : this(pathOrConnectionString, logger, TimeSpan.FromMilliseconds(250))
    {
    }

    /// <summary>A store with another version poll interval (tests).</summary>
    internal SqliteMeshStore(string pathOrConnectionString, ILogger<SqliteMeshStore>? logger, TimeSpan pollInterval)
        : base(pollInterval, logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pathOrConnectionString);
        var b = pathOrConnectionString.Contains('=', StringComparison.Ordinal)
            ? new SqliteConnectionStringBuilder(pathOrConnectionString)
            : new SqliteConnectionStringBuilder { DataSource = pathOrConnectionString };
        if (string.IsNullOrWhiteSpace(b.DataSource) || b.DataSource == ":memory:" || b.Mode == SqliteOpenMode.Memory)
        {
            throw new ArgumentException("The SQLite store needs a file (Data Source=path).", nameof(pathOrConnectionString));
        }

        if (b.Mode == SqliteOpenMode.ReadOnly)
        {
            throw new ArgumentException("The SQLite store needs to write (Mode=ReadOnly was given).", nameof(pathOrConnectionString));
        }

        b.Pooling = true;
        b.DefaultTimeout = Math.Max(b.DefaultTimeout, BusyTimeoutMilliseconds / 1000);
        connectionString = b.ToString();
    }

    /// <summary>Creates the tables if they do not exist and switches the file to WAL mode.</summary>
    public override async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        var c = (SqliteConnection)await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        using (var wal = c.CreateCommand())
        {
            wal.CommandText = "PRAGMA journal_mode = WAL";
            await wal.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var tx = c.BeginTransaction(deferred: false);
        await using var txScope = tx.ConfigureAwait(false);
        using (var ddl = c.CreateCommand())
        {
            ddl.Transaction = tx;
            ddl.CommandText = Schema;
            await ddl.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    private protected override async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken)
    {
        var c = new SqliteConnection(connectionString);
        try
        {
            await c.OpenAsync(cancellationToken).ConfigureAwait(false);
            using var pragma = c.CreateCommand();
            pragma.CommandText = $"PRAGMA busy_timeout = {BusyTimeoutMilliseconds}";
            await pragma.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return c;
        }
        catch
        {
            await c.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private protected override Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken) =>
        Task.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(deferred: false)); // BEGIN IMMEDIATE

    private protected override async ValueTask EnterWriteGateAsync(CancellationToken cancellationToken) =>
        await writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);

    private protected override void ExitWriteGate() => writeGate.Release();

    private protected override object TimeValue(DateTimeOffset time) => time.UtcTicks;

    private protected override DateTimeOffset ReadTime(DbDataReader reader, int ordinal) => new(reader.GetInt64(ordinal), TimeSpan.Zero);

    private protected override void AddJsonParameter(DbCommand command, string name, IReadOnlyList<string> values) =>
        Add(command, name, StringListJson.Write(values));

    private protected override ValueTask ReleaseAsync()
    {
        using (var c = new SqliteConnection(connectionString))
        {
            SqliteConnection.ClearPool(c); // closes the pooled handles on the file
        }

        writeGate.Dispose();
        return ValueTask.CompletedTask;
    }
}
