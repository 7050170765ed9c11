using Sluice.Core.Metadata;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// What the incremental snapshots of a slot have done, in the metadata store, so that a SIGKILL loses at most the chunk
/// in flight: the requests (<c>sluice cdc snapshot</c>, or the rest of an interrupted initial snapshot) with the last
/// key of the last chunk every sink committed, and the initial snapshot's progress per table. The running source
/// polls the requests (this is the signal channel between the command and the running process) and a status command
/// reads them. Kept through <see cref="MetadataStore.Connect"/> (SQLite, or a cluster's shared Postgres schema), so a
/// worker that takes the slot over goes on where its predecessor's sinks committed. A cluster's slot holder
/// (<paramref name="worker"/>, its id in the worker registry) writes its id on each request it moves, so any worker's
/// status shows who runs it; a single process writes none.
/// </summary>
internal sealed class PgSnapshotProgress(MetadataStore store, TimeProvider time, string? worker = null)
{
    public const string Queued = SnapshotStatus.Queued, Running = SnapshotStatus.Running, Done = SnapshotStatus.Done, Failed = SnapshotStatus.Failed;

    /// <summary>Kinds of request: asked for by a person, or the rest of an initial snapshot a crash interrupted.</summary>
    public const string OnDemand = "on_demand", InitialKind = "initial";

    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE IF NOT EXISTS pg_cdc_snapshot_requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT, slot TEXT NOT NULL, database TEXT NOT NULL, recipe TEXT NOT NULL, pipeline TEXT NOT NULL,
            schema_name TEXT NOT NULL, table_name TEXT NOT NULL, where_sql TEXT, chunk_rows INTEGER NOT NULL, kind TEXT NOT NULL,
            status TEXT NOT NULL, last_key TEXT, total INTEGER, rows_read INTEGER NOT NULL DEFAULT 0, rows_emitted INTEGER NOT NULL DEFAULT 0,
            superseded INTEGER NOT NULL DEFAULT 0, chunks INTEGER NOT NULL DEFAULT 0, error TEXT,
            requested_at TEXT NOT NULL, updated_at TEXT NOT NULL, finished_at TEXT);
        CREATE INDEX IF NOT EXISTS pg_cdc_snapshot_requests_open ON pg_cdc_snapshot_requests(slot, database, status);
        CREATE TABLE IF NOT EXISTS pg_cdc_snapshot_tables (
            slot TEXT NOT NULL, database TEXT NOT NULL, consistent_point INTEGER NOT NULL, schema_name TEXT NOT NULL, table_name TEXT NOT NULL,
            last_key TEXT, done INTEGER NOT NULL, updated_at TEXT NOT NULL,
            PRIMARY KEY (slot, database, consistent_point, schema_name, table_name));
        """,
        // The worker of a cluster that last moved the request (null in a single process).
        "ALTER TABLE pg_cdc_snapshot_requests ADD COLUMN worker TEXT NULL;",
    ];

    /// <summary>The schema version <see cref="EnsureSchema"/> brings a store to (a reader of an older store migrates it first).</summary>
    public static int Version => Migrations.Length;

    private const string Columns =
        "id, slot, database, recipe, pipeline, schema_name, table_name, where_sql, chunk_rows, kind, status, last_key, total, rows_read, rows_emitted, superseded, chunks, error, requested_at, updated_at, worker";

    /// <summary>The component its tables are migrated under (<c>component_schema</c>).</summary>
    public const string Component = "postgres_cdc_snapshots";

    public void EnsureSchema() => store.Migrate(Component, Migrations);

    public long Submit(SnapshotRequest request)
    {
        using var c = store.Connect();
        var now = time.GetUtcNow().Iso();
        return c.Scalar<long>(
            "INSERT INTO pg_cdc_snapshot_requests(slot, database, recipe, pipeline, schema_name, table_name, where_sql, chunk_rows, kind, status, last_key, total, requested_at, updated_at) " +
            "VALUES ($slot, $db, $r, $p, $s, $t, $w, $n, $k, $st, $key, $total, $at, $at) RETURNING id",
            null, ("$slot", request.Slot), ("$db", request.Database), ("$r", request.Recipe), ("$p", request.Pipeline), ("$s", request.Schema), ("$t", request.Table),
            ("$w", request.Where), ("$n", request.ChunkRows), ("$k", request.Kind), ("$st", Queued), ("$key", request.LastKey), ("$total", request.Total), ("$at", now));
    }

    public SnapshotRequest? Get(long id) => Query("WHERE id = $id", ("$id", id)).FirstOrDefault();

    /// <summary>The oldest request of this slot not yet finished (a running one resumes from its last key).</summary>
    public SnapshotRequest? Next(string slot, string database) =>
        Query("WHERE slot = $s AND database = $d AND status IN ('queued', 'running') ORDER BY id LIMIT 1", ("$s", slot), ("$d", database)).FirstOrDefault();

    /// <summary>Every request, newest first (for a status command).</summary>
    public IReadOnlyList<SnapshotRequest> List(int limit = 100) => Query("ORDER BY id DESC LIMIT $n", ("$n", limit));

    /// <summary>A slot's requests, newest first (the status board's part).</summary>
    public IReadOnlyList<SnapshotRequest> OfSlot(string slot, string database, int limit) =>
        Query("WHERE slot = $slot AND database = $db ORDER BY id DESC LIMIT $n", ("$slot", slot), ("$db", database), ("$n", limit));

    /// <summary>
    /// A slot's requests as a pipeline's status shows them (newest first); null before the first start made the table
    /// (SQLite, or the shared Postgres store): nothing asked yet.
    /// </summary>
    public List<Core.Status.SnapshotFigures>? Figures(string slot, string database, int limit)
    {
        try
        {
            return OfSlot(slot, database, limit).Select(r => r.Figures).ToList();
        }
        catch (System.Data.Common.DbException)
        {
            return null;
        }
    }

    public void Started(long id, long? total) => Update(id, "status = $st, total = coalesce(total, $total)", ("$st", Running), ("$total", total));

    /// <summary>A chunk every sink committed: the snapshot goes on after <paramref name="lastKey"/> from now on, even after a SIGKILL.</summary>
    public void ChunkDone(long id, string lastKey, int read, int emitted, int superseded) =>
        Update(id, "last_key = $key, rows_read = rows_read + $r, rows_emitted = rows_emitted + $e, superseded = superseded + $x, chunks = chunks + 1",
            ("$key", lastKey), ("$r", read), ("$e", emitted), ("$x", superseded));

    public void Finished(long id) => Update(id, "status = $st, finished_at = $now", ("$st", Done), ("$now", time.GetUtcNow().Iso()));

    public void Fail(long id, string error) => Update(id, "status = $st, error = $e, finished_at = $now", ("$st", Failed), ("$e", error), ("$now", time.GetUtcNow().Iso()));

    /// <summary>The initial snapshot's progress, as every sink committed it: tables before <paramref name="table"/> are complete.</summary>
    public void InitialProgress(string slot, string database, long consistentPoint, IReadOnlyList<CdcTable> tables, int table, string? lastKey, bool done)
    {
        using var c = store.Connect();
        using var tx = c.BeginWrite();
        var now = time.GetUtcNow().Iso();
        for (var t = 0; t <= table; t++)
        {
            var complete = t < table || done;
            c.Execute(
                "INSERT INTO pg_cdc_snapshot_tables(slot, database, consistent_point, schema_name, table_name, last_key, done, updated_at) VALUES ($s, $d, $p, $n, $t, $k, $done, $at) " +
                "ON CONFLICT(slot, database, consistent_point, schema_name, table_name) DO UPDATE SET last_key = CASE WHEN pg_cdc_snapshot_tables.done = 1 THEN pg_cdc_snapshot_tables.last_key ELSE excluded.last_key END, " +
                "done = CASE WHEN pg_cdc_snapshot_tables.done > excluded.done THEN pg_cdc_snapshot_tables.done ELSE excluded.done END, updated_at = excluded.updated_at",
                tx, ("$s", slot), ("$d", database), ("$p", consistentPoint), ("$n", tables[t].Schema), ("$t", tables[t].Name),
                ("$k", t == table ? lastKey : null), ("$done", complete ? 1 : 0), ("$at", now));
        }

        tx.Commit();
    }

    /// <summary>Per table of the initial snapshot at <paramref name="consistentPoint"/>: its last committed key and whether it is complete (empty: nothing committed).</summary>
    public Dictionary<(string Schema, string Table), (string? LastKey, bool Done)> Initial(string slot, string database, long consistentPoint)
    {
        using var c = store.Connect();
        using var cmd = c.Command("SELECT schema_name, table_name, last_key, done FROM pg_cdc_snapshot_tables WHERE slot = $s AND database = $d AND consistent_point = $p",
            null, ("$s", slot), ("$d", database), ("$p", consistentPoint));
        using var r = cmd.ExecuteReader();
        var tables = new Dictionary<(string, string), (string?, bool)>();
        while (r.Read()) { tables[(r.GetString(0), r.GetString(1))] = (r.IsDBNull(2) ? null : r.GetString(2), r.GetInt64(3) == 1); }
        return tables;
    }

    /// <summary>
    /// Turns the rest of an interrupted initial snapshot into incremental requests and marks the slot's snapshot as no
    /// longer to be taken again, in one transaction: a crash after it resumes the requests, never the old snapshot.
    /// The slot's position (<paramref name="slotAt"/>, at or past its consistent point) becomes the source's own in the
    /// same transaction: the sinks stay behind it (at the last snapshot batch they committed) until the stream moves
    /// them, and a start before that must see the slot as this pipeline's, not as moved by someone else.
    /// </summary>
    public void ResumeInitial(string slot, string database, long slotAt, IEnumerable<SnapshotRequest> rest)
    {
        using var c = store.Connect();
        using var tx = c.BeginWrite();
        var now = time.GetUtcNow().Iso();
        foreach (var request in rest)
        {
            c.Execute(
                "INSERT INTO pg_cdc_snapshot_requests(slot, database, recipe, pipeline, schema_name, table_name, where_sql, chunk_rows, kind, status, last_key, requested_at, updated_at) " +
                "VALUES ($slot, $db, $r, $p, $s, $t, NULL, $n, $k, $st, $key, $at, $at)",
                tx, ("$slot", slot), ("$db", database), ("$r", request.Recipe), ("$p", request.Pipeline), ("$s", request.Schema), ("$t", request.Table),
                ("$n", request.ChunkRows), ("$k", InitialKind), ("$st", Queued), ("$key", request.LastKey), ("$at", now));
        }

        c.Execute("UPDATE pg_cdc_slots SET snapshot = 0, advanced_to = CASE WHEN advanced_to > $p THEN advanced_to ELSE $p END WHERE slot = $s AND database = $d", tx, ("$s", slot), ("$d", database), ("$p", slotAt));
        tx.Commit();
    }

    private void Update(long id, string set, params (string, object?)[] values)
    {
        using var c = store.Connect();
        (string, object?)[] all = [.. values, ("$updated", time.GetUtcNow().Iso()), ("$id", id)];
        c.Execute($"UPDATE pg_cdc_snapshot_requests SET {set}{(worker is null ? "" : ", worker = $worker")}, updated_at = $updated WHERE id = $id", null,
            worker is null ? all : [.. all, ("$worker", worker)]);
    }

    private List<SnapshotRequest> Query(string tail, params (string, object?)[] values)
    {
        using var c = store.Connect();
        using var cmd = c.Command($"SELECT {Columns} FROM pg_cdc_snapshot_requests {tail}", null, values);
        using var r = cmd.ExecuteReader();
        var requests = new List<SnapshotRequest>();
        while (r.Read()) { requests.Add(Read(r)); }
        return requests;
    }

    private static SnapshotRequest Read(System.Data.Common.DbDataReader r) => new(
        r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6), Text(r, 7), (int)r.GetInt64(8), r.GetString(9))
    {
        Id = r.GetInt64(0),
        Status = r.GetString(10),
        LastKey = Text(r, 11),
        Total = r.IsDBNull(12) ? null : r.GetInt64(12),
        RowsRead = r.GetInt64(13),
        RowsEmitted = r.GetInt64(14),
        Superseded = r.GetInt64(15),
        Chunks = r.GetInt64(16),
        Error = Text(r, 17),
        RequestedAt = r.GetString(18),
        UpdatedAt = r.GetString(19),
        Worker = Text(r, 20),
    };

    private static string? Text(System.Data.Common.DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
}

/// <summary>
/// An incremental snapshot of one table (docs/CDC.md, "Snapshots on demand"): chunks of <see cref="ChunkRows"/> rows in
/// key order after <see cref="LastKey"/> (a JSON array of the key columns' text), limited by <see cref="Where"/>.
/// </summary>
public sealed record SnapshotRequest(
    string Slot, string Database, string Recipe, string Pipeline, string Schema, string Table, string? Where, int ChunkRows, string Kind)
{
    public long Id { get; init; }

    public string Status { get; init; } = SnapshotStatus.Queued;

    public string? LastKey { get; init; }

    /// <summary>Rows the table holds (under <see cref="Where"/>), counted when the snapshot was asked for; the progress bar's end.</summary>
    public long? Total { get; init; }

    /// <summary>Rows read by chunks every sink committed.</summary>
    public long RowsRead { get; init; }

    /// <summary>Of those, the rows that went downstream (<c>_op = r</c>).</summary>
    public long RowsEmitted { get; init; }

    /// <summary>Rows left out because the stream carried a newer change of their key while their chunk was read.</summary>
    public long Superseded { get; init; }

    public long Chunks { get; init; }

    public string? Error { get; init; }

    public string RequestedAt { get; init; } = "";

    public string UpdatedAt { get; init; } = "";

    /// <summary>The worker of a cluster that last moved it (started it, recorded a chunk, ended it); null in a single process.</summary>
    public string? Worker { get; init; }

    public string Display => $"{Schema}.{Table}";

    /// <summary>As a pipeline's status shows it.</summary>
    public Core.Status.SnapshotFigures Figures => new(Id, Display, Kind, Status, RowsRead, Total, Chunks, Superseded, Error);
}

/// <summary>Where an incremental snapshot request stands.</summary>
public static class SnapshotStatus
{
    public const string Queued = "queued", Running = "running", Done = "done", Failed = "failed";
}
