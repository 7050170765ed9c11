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

    public async Task CheckTablesAsync(CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT c.relname, c.relreplident::text, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) " +
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = ANY($2) AND c.relkind IN ('r', 'p')", connection);
        cmd.Parameters.AddWithValue(options.Schema);
        cmd.Parameters.AddWithValue(options.Tables.Select(t => t.Name).ToArray());
        var found = new HashSet<string>(StringComparer.Ordinal);
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                var table = r.GetString(0);
                found.Add(table);
                var identity = r.GetString(1);
                var hasKey = r.GetBoolean(2);
                if (identity == "n" || (identity == "d" && !hasKey))
                {
                    PostgresLog.NoReplicaIdentity(log, $"{options.Schema}.{table}", identity == "n" ? "REPLICA IDENTITY NOTHING" : "no primary key");
                }
            }
        }

        var missing = options.Tables.Where(t => !found.Contains(t.Name)).Select(t => $"{options.Schema}.{t.Name}").ToList();
        if (missing.Count > 0)
        {
            throw new FatalException($"postgres_cdc: table{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)} not found in database '{options.Connection.Database}' on {options.Connection.Host}:{options.Connection.Port} (create them first, e.g. ./sluice generate engagement-cdc --setup).");
        }
    }

    public async Task EnsurePublicationAsync(CancellationToken ct)
    {
        var exists = await ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", ct, options.Publication).ConfigureAwait(false);
        var tables = options.Tables.Select(t => $"{Quote(options.Schema)}.{Quote(t.Name)}").ToList();
        if (!exists)
        {
            await ExecuteAsync($"CREATE PUBLICATION {Quote(options.Publication)} FOR TABLE {string.Join(", ", tables)}", ct).ConfigureAwait(false);
            PostgresLog.PublicationCreated(log, options.Publication, string.Join(", ", tables));
            return;
        }

        await using var cmd = new NpgsqlCommand("SELECT tablename FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2", connection);
        cmd.Parameters.AddWithValue(options.Publication);
        cmd.Parameters.AddWithValue(options.Schema);
        var published = new HashSet<string>(StringComparer.Ordinal);
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await r.ReadAsync(ct).ConfigureAwait(false)) { published.Add(r.GetString(0)); }
        }

        var missing = options.Tables.Where(t => !published.Contains(t.Name)).Select(t => $"{Quote(options.Schema)}.{Quote(t.Name)}").ToList();
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
