using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Sluice.Core.Metadata;

/// <summary>
/// The embedded metadata store: checkpoints, the file-type catalog, the lake manifest, job runs and dead letters.
/// SQLite in WAL mode, so many Sluice processes (a running instance, <c>query</c>, <c>job run</c>) share it safely;
/// <c>synchronous=FULL</c> because a committed checkpoint must survive a power cut, not only a crash.
/// A cluster keeps the same tables in a Postgres schema instead (<see cref="SharedMetadata"/>): the stores written for
/// both providers take <see cref="Connect"/>; what still needs SQLite takes <see cref="Open"/>, which a shared store refuses.
/// </summary>
public sealed class MetadataStore
{
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE IF NOT EXISTS checkpoints (
            key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS file_types (
            recipe TEXT NOT NULL, name TEXT NOT NULL, definition TEXT NOT NULL, origin TEXT NOT NULL, updated_at TEXT NOT NULL,
            PRIMARY KEY (recipe, name));
        CREATE TABLE IF NOT EXISTS ingested_files (
            content_hash TEXT NOT NULL, recipe TEXT NOT NULL, file_name TEXT NOT NULL, file_type TEXT NOT NULL,
            rows INTEGER NOT NULL, rejected_rows INTEGER NOT NULL, committed_at TEXT NOT NULL,
            PRIMARY KEY (recipe, content_hash));
        CREATE TABLE IF NOT EXISTS lake_files (
            id INTEGER PRIMARY KEY AUTOINCREMENT, table_name TEXT NOT NULL, partition_key TEXT NOT NULL,
            partition_value TEXT NOT NULL, path TEXT NOT NULL UNIQUE, rows INTEGER NOT NULL, origin TEXT NOT NULL,
            committed_at TEXT NOT NULL, removed_at TEXT NULL);
        CREATE INDEX IF NOT EXISTS ix_lake_files_table ON lake_files(table_name, removed_at);
        CREATE TABLE IF NOT EXISTS lake_tables (
            name TEXT PRIMARY KEY, partition_key TEXT NOT NULL, partition_type TEXT NOT NULL, columns TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS lake_garbage (
            path TEXT PRIMARY KEY, delete_after TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS job_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, as_of TEXT NOT NULL, trigger TEXT NOT NULL,
            started_at TEXT NOT NULL, ended_at TEXT NULL, status TEXT NOT NULL, rows_in INTEGER NULL,
            rows_out INTEGER NULL, message TEXT NULL, pid INTEGER NULL);
        CREATE INDEX IF NOT EXISTS ix_job_runs_job ON job_runs(job, id);
        CREATE TABLE IF NOT EXISTS dead_letters (
            id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, position TEXT NOT NULL, reason TEXT NOT NULL,
            payload TEXT NULL, created_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', replayed_at TEXT NULL,
            dedup_key TEXT NULL);
        CREATE INDEX IF NOT EXISTS ix_dead_letters_source ON dead_letters(source, status);
        CREATE UNIQUE INDEX IF NOT EXISTS ux_dead_letters_dedup ON dead_letters(dedup_key) WHERE dedup_key IS NOT NULL;
        CREATE TABLE IF NOT EXISTS component_schema (
            component TEXT PRIMARY KEY, version INTEGER NOT NULL);
        """,
        // Names a commit is about to rename into the lake, written before the renames: the only lake files the orphan
        // sweep may delete besides staging folders and replaced files (a crash between rename and commit leaves them).
        """
        CREATE TABLE IF NOT EXISTS lake_reserved (
            path TEXT PRIMARY KEY, origin TEXT NOT NULL, reserved_at TEXT NOT NULL);
        """,
    ];

    private readonly string _connectionString;
    private readonly SharedMetadata? _shared;

    /// <summary>
    /// Opens the store of a data folder, creating it in a fresh folder. A folder whose store is missing but which holds
    /// data is refused (<see cref="MetadataMissingException"/>): a fresh store there would take its lake for orphans and
    /// its inputs for new. A store that cannot be opened and written is a <see cref="MetadataUnavailableException"/>.
    /// </summary>
    public MetadataStore(DataDirectory data) : this(data, recovering: false)
    {
    }

    private MetadataStore(DataDirectory data, bool recovering)
    {
        ArgumentNullException.ThrowIfNull(data);
        Path = data.MetadataPath;
        if (!recovering && !System.IO.Path.Exists(Path) && DataFolderEvidence.Find(data) is { } evidence)
        {
            throw new MetadataMissingException(data, evidence);
        }

        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        try
        {
            data.EnsureCreated();
            IO.PrivateFiles.CreateEmpty(Path);
            Migrate();
            ProbeWritable();
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException)
        {
            SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
            throw new MetadataUnavailableException(data, e);
        }
    }

    private MetadataStore(SharedMetadata shared)
    {
        _shared = shared;
        _connectionString = shared.ConnectionString();
        Path = shared.ToString();
        try
        {
            MigrateShared();
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            NpgsqlConnection.ClearPool(new NpgsqlConnection(_connectionString));
            throw new MetadataUnavailableException($"cannot open the shared metadata store {shared}: {e.Message}", e);
        }
    }

    /// <summary>The file of the store (<c>meta.db</c>), or the Postgres database and schema of a shared one.</summary>
    public string Path { get; }

    /// <summary>The cluster's shared store, when this one is in Postgres; null for a data folder's SQLite.</summary>
    public SharedMetadata? Shared => _shared;

    /// <summary>The data folder's store, or the cluster's when <paramref name="shared"/> is given (created and migrated at start).</summary>
    public static MetadataStore For(DataDirectory data, SharedMetadata? shared) => shared is null ? new MetadataStore(data) : new MetadataStore(shared);

    /// <summary>
    /// A connection to the store, SQLite or Postgres, for the stores whose SQL runs on both (checkpoints, dead letters,
    /// job runs, tokens, alerts, console sessions, the file-type catalog and ledger).
    /// </summary>
    public DbConnection Connect()
    {
        if (_shared is null)
        {
            return Open();
        }

        var connection = new NpgsqlConnection(_connectionString);
        connection.Open();
        return connection;
    }

    /// <summary>Opens the store for <c>sluice recover</c>, which may create it over a folder that holds data.</summary>
    public static MetadataStore ForRecovery(DataDirectory data) => new(data, recovering: true);

    /// <summary>A connection to the data folder's SQLite store, for what is kept there only (the lake manifest, models' state, ...).</summary>
    public SqliteConnection Open()
    {
        if (_shared is not null)
        {
            throw new MetadataUnavailableException(
                $"this part of Sluice keeps its state in a data folder's SQLite store only; the cluster's shared metadata ({_shared}) does not hold it yet (docs/SCALING.md, \"Shared state\")");
        }

        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON;";
        pragma.ExecuteNonQuery();
        return connection;
    }

    /// <summary>
    /// A read-only store (a read-only file, folder or mount) opens and reads; only the first write fails, deep inside
    /// some command. Taking the write lock once at start makes every command fail at once, with the cause.
    /// </summary>
    private void ProbeWritable()
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction(deferred: false);
        tx.Rollback();
    }

    /// <summary>
    /// Applies a component's own migrations (a connector's tables: tokens, dedup windows, ...) once each, in order, so
    /// components own their schema without editing this file. Safe to call from every process at every start.
    /// </summary>
    public void Migrate(string component, IReadOnlyList<string> migrations)
    {
        ArgumentNullException.ThrowIfNull(migrations);
        using var connection = Connect();
        using var tx = connection.BeginWrite();
        var current = connection.Scalar<long?>("SELECT version FROM component_schema WHERE component = $c", tx, ("$c", component)) ?? 0;
        for (var i = (int)current; i < migrations.Count; i++)
        {
            connection.Execute(_shared is null ? migrations[i] : PostgresMetadataDialect.Schema(migrations[i]), tx);
        }

        if (migrations.Count > current)
        {
            connection.Execute(
                "INSERT INTO component_schema(component, version) VALUES ($c, $v) ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                tx, ("$c", component), ("$v", migrations.Count));
        }

        tx.Commit();
    }

    private void Migrate()
    {
        using var connection = Open();
        using var version = connection.CreateCommand();
        version.CommandText = "PRAGMA user_version";
        var current = Convert.ToInt32(version.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        for (var i = current; i < Migrations.Length; i++)
        {
            using var tx = connection.BeginTransaction();
            using var cmd = connection.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = Migrations[i] + $"\nPRAGMA user_version = {i + 1};";
            cmd.ExecuteNonQuery();
            tx.Commit();
        }
    }

    /// <summary>
    /// The schema of a shared store, created and brought to the current version by whichever process starts first; the
    /// others wait on the advisory lock and find it done. The core migrations count as the component <c>metadata</c>.
    /// </summary>
    private void MigrateShared()
    {
        using var connection = Connect();
        using var tx = connection.BeginTransaction();
        connection.Execute("SELECT pg_advisory_xact_lock(hashtext($k))", tx, ("$k", "sluice_meta_migrate:" + _shared!.Schema));
        connection.Execute($"CREATE SCHEMA IF NOT EXISTS {_shared.Schema}", tx);
        connection.Execute(PostgresMetadataDialect.Schema("CREATE TABLE IF NOT EXISTS component_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"), tx);
        connection.Execute(PostgresMetadataDialect.Functions, tx);
        var current = connection.Scalar<long?>("SELECT version FROM component_schema WHERE component = 'metadata'", tx) ?? 0;
        for (var i = (int)current; i < Migrations.Length; i++)
        {
            connection.Execute(PostgresMetadataDialect.Schema(Migrations[i]), tx);
        }

        connection.Execute(
            "INSERT INTO component_schema(component, version) VALUES ('metadata', $v) ON CONFLICT(component) DO UPDATE SET version = excluded.version",
            tx, ("$v", Migrations.Length));
        tx.Commit();
    }
}
