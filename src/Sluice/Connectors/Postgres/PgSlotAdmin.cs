using Microsoft.Extensions.Logging;
using Npgsql;
using Sluice.Core;

namespace Sluice.Connectors.Postgres;

internal sealed record SlotInfo(string Plugin, string Database, bool Active, int? ActivePid, long ConfirmedFlush);

/// <summary>Publication and slot housekeeping over an ordinary connection: create what is missing, inspect, report.</summary>
internal sealed class PgSlotAdmin(NpgsqlConnection connection, PostgresCdcOptions options, ILogger log)
{
    /// <summary>Snapshot batches take positions just below the slot's consistent point; this many bytes of WAL written before the slot is created keep them above anything committed earlier.</summary>
    public const int SnapshotGap = 65_536;

    /// <summary>
    /// The tables the recipe's entries name, from the catalog: each table goes to the first entry that matches it; an
    /// entry that matches nothing stops the start (a typo would otherwise stream nothing, silently). Tables without a
    /// usable replica identity are reported.
    /// </summary>
    public async Task<IReadOnlyList<CdcTable>> ResolveTablesAsync(CancellationToken ct)
    {
        var tables = new List<CdcTable>();
        var used = new HashSet<CdcTableRule>();
        foreach (var (schema, name, identity, key) in await CatalogAsync(connection, ct).ConfigureAwait(false))
        {
            if (options.Tables.FirstOrDefault(t => t.Pattern.Matches(schema, name, options.Schema)) is not { } rule) { continue; }
            used.Add(rule);
            var table = options.Resolve(rule, schema, name, key);
            tables.Add(table);
            if (NoReplicaIdentity(identity, key) is { } why) { PostgresLog.NoReplicaIdentity(log, table.Display, why); }
        }

        var missing = Unmatched(options, used);
        if (missing.Count > 0)
        {
            throw new FatalException($"postgres_cdc: table{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)} not found in database '{options.Connection.Database}' on {options.Connection.Host}:{options.Connection.Port} (create them first, e.g. ./sluice generate engagement-cdc --setup).");
        }

        var clash = tables.GroupBy(t => t.BatchName, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (clash is not null)
        {
            throw new SluiceException($"postgres_cdc: tables {string.Join(" and ", clash.Select(t => t.Display))} would both be called '{clash.Key}' downstream; name them apart.");
        }

        return tables;
    }

    /// <summary>The database's tables (not partitions, not system ones): schema, name, replica identity (<c>relreplident</c>) and key (primary, else the replica identity index).</summary>
    public static async Task<List<(string Schema, string Name, string Identity, string[] Key)>> CatalogAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        static string KeyOf(string which) =>
            "(SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) " +
            $"JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum WHERE i.indrelid = c.oid AND i.{which})";
        await using var cmd = new NpgsqlCommand(
            $"SELECT n.nspname, c.relname, c.relreplident::text, coalesce({KeyOf("indisprimary")}, {KeyOf("indisreplident")}, '{{}}') " +
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition " +
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY n.nspname, c.relname", connection);
        var tables = new List<(string, string, string, string[])>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) { tables.Add((r.GetString(0), r.GetString(1), r.GetString(2), r.GetFieldValue<string[]>(3))); }
        return tables;
    }

    /// <summary>The <c>tables:</c> entries that matched no table, as a message names them.</summary>
    public static List<string> Unmatched(PostgresCdcOptions options, HashSet<CdcTableRule> used) =>
        options.Tables.Where(t => !used.Contains(t)).Select(t => t.Pattern.IsPattern ? $"'{t.Pattern.Text}' (a pattern that matches no table)" : $"{t.Pattern.SchemaPattern ?? options.Schema}.{t.Pattern.NamePattern}").ToList();

    /// <summary>Why Postgres cannot publish the table's updates and deletes (it then refuses them), or null when it can.</summary>
    public static string? NoReplicaIdentity(string identity, string[] key) =>
        identity == "n" ? "REPLICA IDENTITY NOTHING" : identity == "d" && key.Length == 0 ? "no primary key" : null;

    public async Task EnsurePublicationAsync(IReadOnlyList<CdcTable> resolved, CancellationToken ct)
    {
        var exists = await ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", ct, options.Publication).ConfigureAwait(false);
        if (!exists)
        {
            var tables = string.Join(", ", resolved.Select(t => t.Sql));
            await ExecuteAsync($"CREATE PUBLICATION {Quote(options.Publication)} FOR TABLE {tables}", ct).ConfigureAwait(false);
            PostgresLog.PublicationCreated(log, options.Publication, tables);
            return;
        }

        await using var cmd = new NpgsqlCommand("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1", connection);
        cmd.Parameters.AddWithValue(options.Publication);
        var published = new HashSet<(string, string)>();
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await r.ReadAsync(ct).ConfigureAwait(false)) { published.Add((r.GetString(0), r.GetString(1))); }
        }

        var missing = resolved.Where(t => !published.Contains((t.Schema, t.Name))).Select(t => t.Sql).ToList();
        if (missing.Count > 0)
        {
            await ExecuteAsync($"ALTER PUBLICATION {Quote(options.Publication)} ADD TABLE {string.Join(", ", missing)}", ct).ConfigureAwait(false);
            PostgresLog.PublicationCreated(log, options.Publication, string.Join(", ", missing));
        }
    }

    public async Task<SlotInfo?> SlotAsync(CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT coalesce(plugin, ''), coalesce(database, ''), active, active_pid, coalesce(confirmed_flush_lsn, '0/0')::text FROM pg_replication_slots WHERE slot_name = $1", connection);
        cmd.Parameters.AddWithValue(options.Slot);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await r.ReadAsync(ct).ConfigureAwait(false)) { return null; }
        return new SlotInfo(r.GetString(0), r.GetString(1), r.GetBoolean(2), r.IsDBNull(3) ? null : r.GetInt32(3), PgCdcState.Parse(r.GetString(4)));
    }

    /// <summary>A predecessor killed a moment ago may still hold the slot until the server notices; wait for it, within limits.</summary>
    public async Task<SlotInfo?> WaitUntilFreeAsync(TimeProvider time, CancellationToken ct)
    {
        var deadline = time.GetUtcNow() + options.SlotBusyTimeout;
        var logged = false;
        while (true)
        {
            var slot = await SlotAsync(ct).ConfigureAwait(false);
            if (slot is null || !slot.Active) { return slot; }
            if (time.GetUtcNow() >= deadline)
            {
                throw new FatalException($"postgres_cdc: replication slot '{options.Slot}' is still in use by server process {slot.ActivePid} after {options.SlotBusyTimeout.TotalSeconds:0} s; another Sluice (or another consumer) is reading it. Stop it, or end that process with SELECT pg_terminate_backend({slot.ActivePid}).");
            }

            if (!logged) { PostgresLog.SlotBusy(log, options.Slot, slot.ActivePid ?? 0); logged = true; }
            await Task.Delay(TimeSpan.FromMilliseconds(250), time, ct).ConfigureAwait(false);
        }
    }

    public Task DropSlotAsync(CancellationToken ct) => ExecuteAsync($"SELECT pg_drop_replication_slot('{options.Slot}')", ct);

    /// <summary>Writes <see cref="SnapshotGap"/> bytes of WAL (a non-transactional logical message no subscriber asked for).</summary>
    public Task EmitSnapshotGapAsync(CancellationToken ct) =>
        ExecuteAsync($"SELECT pg_logical_emit_message(false, 'sluice-snapshot-gap', repeat(' ', {SnapshotGap}))", ct);

    /// <summary>
    /// A transaction the stream will show after everything committed so far (a logical message, sent because the
    /// reader asks for messages): it lets the reader place a snapshot taken now even when nothing else changes.
    /// </summary>
    public Task EmitMarkerAsync(CancellationToken ct) =>
        ExecuteAsync("SELECT pg_logical_emit_message(true, 'sluice-snapshot-mark', '')", ct);

    private async Task ExecuteAsync(string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private async Task<T> ScalarAsync<T>(string sql, CancellationToken ct, params object[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        foreach (var a in args) { cmd.Parameters.AddWithValue(a); }
        return (T)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
