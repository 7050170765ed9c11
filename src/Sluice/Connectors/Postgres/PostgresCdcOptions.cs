using System.Text.RegularExpressions;
using Sluice.Core.Config;

namespace Sluice.Connectors.Postgres;

/// <summary>What the source does with an UPDATE or DELETE of a table (inserts always flow).</summary>
public enum ChangePolicy
{
    /// <summary>Dropped: the write-up processes inserts only (<c>op = c</c>).</summary>
    Ignore,

    /// <summary>Passed downstream as a row with <c>_op</c> = <c>u</c> or <c>d</c> (the new row, or the key of the deleted one).</summary>
    Emit,

    /// <summary>Not applied, but kept in the dead-letter store with the row, so nothing disappears without a trace.</summary>
    DeadLetter,
}

/// <summary>
/// A table streamed, as resolved against the catalog at start: its schema and name exactly as Postgres has them, the
/// name its rows carry downstream (<see cref="BatchName"/>), its policies and its key columns (the primary key, else the
/// replica identity index; empty when it has neither).
/// </summary>
public sealed record CdcTable(string Name, ChangePolicy OnUpdate, ChangePolicy OnDelete, string Schema = "public", string? Batch = null, IReadOnlyList<string>? Key = null)
{
    /// <summary>The table's name in batches (and so in sinks' <c>table:</c> options): the bare name in the source's <c>schema</c>, else <c>schema.name</c>.</summary>
    public string BatchName => Batch ?? Name;

    public IReadOnlyList<string> KeyColumns => Key ?? [];

    /// <summary>The quoted SQL name.</summary>
    public string Sql => $"{PgSlotAdmin.Quote(Schema)}.{PgSlotAdmin.Quote(Name)}";

    /// <summary>schema.name as a person reads it.</summary>
    public string Display => $"{Schema}.{Name}";
}

/// <summary>A <c>tables:</c> entry: a name or pattern and the policies of the tables it matches.</summary>
public sealed record CdcTableRule(PgTablePattern Pattern, ChangePolicy OnUpdate, ChangePolicy OnDelete);

/// <summary>Options of the <c>postgres_cdc</c> source, read from the recipe's <c>source:</c> block and validated at load.</summary>
public sealed partial class PostgresCdcOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly PostgresCdcOptions Default = OptionDefaults.Of<PostgresCdcOptions>();

    /// <summary>The server (the <c>connection:</c> block, else <c>PG*</c> environment variables).</summary>
    public required PostgresConnectionOptions Connection { get; init; }

    /// <summary>The publication streamed; created (for <see cref="Tables"/>) when missing. Default <c>sluice_&lt;recipe&gt;</c>.</summary>
    public required string Publication { get; init; }

    /// <summary>The logical replication slot (pgoutput); created when missing. Default <c>sluice_&lt;recipe&gt;</c>.</summary>
    public required string Slot { get; init; }

    /// <summary>Schema of the tables named without one; its tables keep their bare names downstream.</summary>
    public string Schema { get; init; } = "public";

    /// <summary>
    /// The tables streamed: names or patterns (<see cref="PgTablePattern"/>), each with its update and delete policy
    /// (default: ignore both), resolved against the catalog at every start (a table goes to the first entry that
    /// matches it; an entry that matches no table stops the start).
    /// </summary>
    public required IReadOnlyList<CdcTableRule> Tables { get; init; }

    /// <summary>Read the tables' rows in a snapshot consistent with the slot when the slot is created.</summary>
    public bool Snapshot { get; init; } = true;

    /// <summary>
    /// Rows per batch at most: a batch is cut at a transaction end once it holds this many rows, or as soon
    /// as no more changes are waiting. A single transaction is never split, so a larger transaction is a larger batch.
    /// </summary>
    public int BatchRows { get; init; } = 10_000;

    /// <summary>
    /// How long what the reader decoded may wait for more before it goes to the sinks (<c>batch_linger</c>, default
    /// 150 ms, at most 1 s), from the first change after the last hand-over; a backlog goes at <see cref="BatchRows"/>.
    /// The cost at a steady rate is per batch (socket reads, thread wake-ups, sink round trips, checkpoints), so a
    /// longer linger is cheaper per change and adds at most itself to each change's latency.
    /// </summary>
    public TimeSpan BatchLinger { get; init; } = TimeSpan.FromMilliseconds(150);

    /// <summary>How often the confirmed position is reported to the server when nothing else prompts it.</summary>
    public TimeSpan StatusInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often an idle stream asks the server for a keepalive, whose WAL position lets the slot advance past changes
    /// to other tables and databases, so an idle source does not hold back WAL.
    /// </summary>
    public TimeSpan Heartbeat { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long to wait for a slot still held by a predecessor (one killed moments ago) before failing.</summary>
    public TimeSpan SlotBusyTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the slot is checked and its metrics refreshed (<c>slot_check_interval</c>, default 10 s).</summary>
    public TimeSpan SlotCheckInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How often a heartbeat is written (<c>heartbeat_interval</c>, default 1 min): a non-transactional logical message
    /// (<c>pg_logical_emit_message(false, 'sluice.heartbeat', ...)</c>) that puts WAL of this database behind the busy
    /// tables of others, so the slot advances even when the published tables are idle. Passed downstream only with
    /// <see cref="EmitHeartbeats"/>.
    /// </summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Rows per chunk of an incremental snapshot (<c>snapshot_chunk_rows</c>, default 1,024): <c>sluice cdc snapshot</c>
    /// without <c>--chunk-rows</c>, and the rest of an interrupted initial snapshot. A chunk is held in memory until it
    /// is placed in the stream.
    /// </summary>
    public int SnapshotChunkRows { get; init; } = 1024;

    /// <summary>
    /// Deliver each heartbeat downstream as a row of <see cref="HeartbeatTable"/> (<c>emit_heartbeats</c>, default false):
    /// a sink with <c>table:</c> that name records them (a liveness signal downstream: the pipeline is up to date as of
    /// <c>_commit_ts</c>). Other sinks ignore the table, as they ignore any table not theirs.
    /// </summary>
    public bool EmitHeartbeats { get; init; }

    /// <summary>The table heartbeat rows carry downstream (<c>heartbeat_table</c>, default <c>_heartbeat</c>); columns <c>_lsn</c>, <c>_commit_ts</c>, <c>slot</c>, <c>database</c>.</summary>
    public string HeartbeatTable { get; init; } = "_heartbeat";

    /// <summary>WAL the slot may hold back before a warning and a degraded <c>/healthz</c> (<c>lag_warn_bytes</c>, default 1 GiB).</summary>
    public long LagWarnBytes { get; init; } = 1L << 30;

    /// <summary>Age of the oldest change read but not yet committed by every sink before a warning (<c>lag_warn_seconds</c>, default 300).</summary>
    public double LagWarnSeconds { get; init; } = 300;

    /// <summary>
    /// When <c>max_slot_wal_keep_size</c> is set: an error and a failing <c>/healthz</c> once the slot's <c>safe_wal_size</c>
    /// falls below this fraction of it (<c>wal_error_fraction</c>, default 0.2), before the server invalidates the slot.
    /// </summary>
    public double WalErrorFraction { get; init; } = 0.2;

    /// <summary>The table <paramref name="name"/> of <see cref="Schema"/> with the policies of the first entry that matches it; null when none does.</summary>
    public CdcTable? Table(string name) =>
        Tables.FirstOrDefault(t => t.Pattern.Matches(Schema, name, Schema)) is { } rule ? new CdcTable(name, rule.OnUpdate, rule.OnDelete, Schema) : null;

    /// <summary>
    /// Why a mirror of the batch table <paramref name="table"/> (a bare name of <see cref="Schema"/>, or
    /// <c>schema.name</c>) would go wrong: the first entry matching it ignores updates or deletes. Null when no entry
    /// matches it at load (patterns are resolved against the catalog at start) or both are emitted.
    /// </summary>
    public string? MirrorProblem(string table)
    {
        ArgumentNullException.ThrowIfNull(table);
        var dot = table.IndexOf('.', StringComparison.Ordinal);
        var rule = Tables.FirstOrDefault(t => t.Pattern.Matches(Schema, table, Schema))
            ?? (dot > 0 ? Tables.FirstOrDefault(t => t.Pattern.Matches(table[..dot], table[(dot + 1)..], Schema)) : null);
        if (rule is null || (rule.OnUpdate == ChangePolicy.Emit && rule.OnDelete == ChangePolicy.Emit)) { return null; }
        return $"the source's tables entry '{rule.Pattern.Text}' has on_update: {Snake(rule.OnUpdate)}, on_delete: {Snake(rule.OnDelete)}, so the mirror of '{table}' would miss changes; set both to emit";
    }

    private static string Snake(ChangePolicy policy) => policy switch { ChangePolicy.Emit => "emit", ChangePolicy.Ignore => "ignore", _ => "dead_letter" };

    /// <summary>The table as the rows of <paramref name="rule"/> carry it.</summary>
    public CdcTable Resolve(CdcTableRule rule, string schema, string name, IReadOnlyList<string> key)
    {
        ArgumentNullException.ThrowIfNull(rule);
        return new CdcTable(name, rule.OnUpdate, rule.OnDelete, schema, schema == Schema ? name : $"{schema}.{name}", key);
    }

    public static PostgresCdcOptions Parse(ConfigMap map, string recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        var fallback = "sluice_" + NonIdentifier().Replace(recipe.ToLowerInvariant(), "_");
        map.Declare("publication", "text", "sluice_<recipe>", "The publication streamed; created (for `tables`) when missing.");
        map.Declare("slot", "text", "sluice_<recipe>", "The logical replication slot (pgoutput); created when missing.");
        var tables = new List<CdcTableRule>();
        // `tables: [public.*, sales.order_*]` (policies: ignore) or `tables: { content: { on_update: emit } }`.
        var entries = map.Has("tables") && !map.IsMapping("tables")
            ? map.StringList("tables", doc: "The tables streamed: names or patterns (PgTablePattern), each with its update and delete policy, resolved against the catalog at every start (a table goes to the first entry that matches it; an entry that matches no table stops the start).").Select(n => (n, (ChangePolicy.Ignore, ChangePolicy.Ignore)))
            : map.NamedMaps("tables", doc: "The tables streamed: names or patterns (PgTablePattern), each with its update and delete policy, resolved against the catalog at every start (a table goes to the first entry that matches it; an entry that matches no table stops the start).").Select(e =>
            {
                var policies = (e.Map.Enum("on_update", ChangePolicy.Ignore, doc: "What an UPDATE of the table becomes: `ignore`, `emit` (a row downstream) or `dead_letter`."), e.Map.Enum("on_delete", ChangePolicy.Ignore, doc: "What a DELETE of the table becomes: `ignore`, `emit` (a row downstream) or `dead_letter`."));
                e.Map.Done();
                return (e.Name, policies);
            });
        foreach (var (name, policies) in entries.ToList())
        {
            if (PgTablePattern.Parse(name, out var error) is { } pattern) { tables.Add(new CdcTableRule(pattern, policies.Item1, policies.Item2)); }
            else { map.Error("tables", $"postgres_cdc: {error}"); }
        }

        var options = new PostgresCdcOptions
        {
            Connection = PostgresConnectionOptions.Parse(map, "postgres_cdc"),
            Publication = EnvText.Expand(map.String("publication", fallback) ?? fallback),
            Slot = EnvText.Expand(map.String("slot", fallback) ?? fallback),
            Schema = map.String("schema", Default.Schema, doc: "Schema of the tables named without one; its tables keep their bare names downstream.") ?? Default.Schema,
            Tables = tables,
            Snapshot = map.Bool("snapshot", Default.Snapshot, doc: "Read the tables' rows in a snapshot consistent with the slot when the slot is created."),
            BatchRows = map.Int("batch_rows", Default.BatchRows, 1, 1_000_000, doc: "Rows per batch at most: a batch is cut at a transaction end once it holds this many rows, or as soon as no more changes are waiting. A single transaction is never split, so a larger transaction is a larger batch."),
            BatchLinger = map.Duration("batch_linger", Default.BatchLinger, doc: "How long what the reader decoded may wait for more before it goes to the sinks, from the first change after the last hand-over; a backlog goes at `batch_rows`. The cost at a steady rate is per batch (socket reads, thread wake-ups, sink round trips, checkpoints), so a longer linger is cheaper per change and adds at most itself to each change's latency."),
            StatusInterval = map.Duration("status_interval", Default.StatusInterval, doc: "How often the confirmed position is reported to the server when nothing else prompts it."),
            Heartbeat = map.Duration("heartbeat", Default.Heartbeat, doc: "How often an idle stream asks the server for a keepalive, whose WAL position lets the slot advance past changes to other tables and databases, so an idle source does not hold back WAL."),
            SlotBusyTimeout = map.Duration("slot_busy_timeout", Default.SlotBusyTimeout, doc: "How long to wait for a slot still held by a predecessor (one killed moments ago) before failing."),
            SlotCheckInterval = map.Duration("slot_check_interval", Default.SlotCheckInterval, doc: "How often the slot is checked and its metrics refreshed."),
            HeartbeatInterval = map.Duration("heartbeat_interval", Default.HeartbeatInterval, doc: "How often a heartbeat is written: a non-transactional logical message (`pg_logical_emit_message(false, 'sluice.heartbeat', ...)`) that puts WAL of this database behind the busy tables of others, so the slot advances even when the published tables are idle. Passed downstream only with `emit_heartbeats`."),
            LagWarnBytes = (long)map.Double("lag_warn_bytes", Default.LagWarnBytes, 1, 1e18, doc: "WAL the slot may hold back before a warning and a degraded `/healthz`."),
            LagWarnSeconds = map.Double("lag_warn_seconds", Default.LagWarnSeconds, 0.001, 1e9, doc: "Age of the oldest change read but not yet committed by every sink before a warning."),
            WalErrorFraction = map.Double("wal_error_fraction", Default.WalErrorFraction, 0, 1, doc: "When `max_slot_wal_keep_size` is set: an error and a failing `/healthz` once the slot's `safe_wal_size` falls below this fraction of it, before the server invalidates the slot."),
            SnapshotChunkRows = map.Int("snapshot_chunk_rows", Default.SnapshotChunkRows, 1, 1_000_000, doc: "Rows per chunk of an incremental snapshot: `sluice cdc snapshot` without `--chunk-rows`, and the rest of an interrupted initial snapshot. A chunk is held in memory until it is placed in the stream."),
            EmitHeartbeats = map.Bool("emit_heartbeats", Default.EmitHeartbeats, doc: "Deliver each heartbeat downstream as a row of `heartbeat_table`: a sink with `table:` that name records them (a liveness signal downstream: the pipeline is up to date as of `_commit_ts`). Other sinks ignore the table, as they ignore any table not theirs."),
            HeartbeatTable = map.String("heartbeat_table", Default.HeartbeatTable, doc: "The table heartbeat rows carry downstream; columns `_lsn`, `_commit_ts`, `slot`, `database`.") ?? Default.HeartbeatTable,
        };

        if (options.BatchLinger < TimeSpan.Zero || options.BatchLinger > TimeSpan.FromSeconds(1))
        {
            map.Error("batch_linger", $"postgres_cdc: must be between 0ms and 1s, got {options.BatchLinger.TotalMilliseconds:0}ms");
        }

        if (string.IsNullOrWhiteSpace(options.HeartbeatTable)) { map.Error("heartbeat_table", "postgres_cdc: name the table heartbeat rows carry, e.g. `heartbeat_table: _heartbeat`"); }
        if (tables.Count == 0) { map.Error("tables", "postgres_cdc: name at least one table, e.g. `tables: { engagement_events: {} }`"); }
        foreach (var (key, value) in new[] { ("publication", options.Publication), ("slot", options.Slot), ("schema", options.Schema) })
        {
            if (!Identifier().IsMatch(value)) { map.Error(key, $"postgres_cdc: '{value}' must be a plain lower-case name (letters, digits, '_')"); }
        }

        if (!string.Equals(options.Slot, options.Slot.ToLowerInvariant(), StringComparison.Ordinal)) { map.Error("slot", $"postgres_cdc: slot names are lower case, got '{options.Slot}'"); }
        foreach (var (key, value) in new[] { ("status_interval", options.StatusInterval), ("heartbeat", options.Heartbeat), ("slot_check_interval", options.SlotCheckInterval), ("heartbeat_interval", options.HeartbeatInterval) })
        {
            if (value < TimeSpan.FromMilliseconds(100)) { map.Error(key, $"postgres_cdc: must be at least 100ms, got {value.TotalMilliseconds:0}ms"); }
        }

        return options;
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex Identifier();

    [GeneratedRegex("[^a-z0-9_]")]
    private static partial Regex NonIdentifier();
}
