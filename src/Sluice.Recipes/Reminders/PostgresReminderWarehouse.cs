using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Sluice.Connectors.Postgres;
using Sluice.Connectors.Pull;
using Sluice.Core;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

namespace Sluice.Recipes.Reminders;

/// <summary>
/// The tables in a PostgreSQL schema (server from the <c>PG*</c> variables): <c>source_event</c>,
/// <c>attorney_events</c>, <c>attorney_reminder</c>, the view <c>vw_reminder_ready</c>, and <c>checkpoints</c>, which
/// holds pull watermarks and push positions in the same transaction as the rows they cover, and <c>log_commits</c>,
/// which holds the events of a cluster's shared log that the rows came from (runs of stream sequences, as the lake's
/// <c>lake_log_commits</c>), so that an event delivered again to another worker lands once. Rows go in with binary
/// COPY; the rule runs in PostgreSQL.
/// </summary>
public sealed class PostgresReminderWarehouse : IReminderWarehouse
{
    private readonly IEngineServices _services;
    private readonly string _schema;
    private readonly NpgsqlDataSource _source;
    private readonly string _describe;

    /// <param name="server">The server; by default the one the <c>PG*</c> variables name.</param>
    public PostgresReminderWarehouse(IEngineServices services, string schema, string recipe, PostgresConnectionOptions? server = null)
    {
        _services = services;
        _schema = schema;
        var settings = (server ?? PostgresConnectionOptions.FromEnvironment()).Builder();
        settings.ApplicationName = $"sluice {recipe}";
        settings.Timezone = "UTC";
        // A worker paused mid-transaction (SIGSTOP, a frozen VM) would keep the log's advisory lock and its row locks,
        // and every other worker's commit of the same log would wait on them: the server ends such a transaction
        // instead (the paused worker's batch is rolled back, and delivered again). The store's transactions are idle
        // only between their statements: nothing else (the dead letters, which wait for the shared store's write lock
        // on a cluster) is done inside one.
        settings.Options = $"{settings.Options} -c idle_in_transaction_session_timeout={(int)PostgresSinkOptions.IdleInTransactionTimeout.TotalMilliseconds}".Trim();
        _describe = $"PostgreSQL schema {schema} on {PostgresConnectionOptions.Describe(settings)}";
        _source = NpgsqlDataSource.Create(settings);
    }

    public string Describe => _describe;

    public string Name(string table) => $"\"{_schema}\".\"{table}\"";

    public async Task InitialiseAsync(CancellationToken ct)
    {
        var conn = await OpenAsync(ct).ConfigureAwait(false);
        await using var _ = conn.ConfigureAwait(false);
        var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using var __ = tx.ConfigureAwait(false);
        // Several processes may start at once; one creates, the others wait and find it done.
        await ExecAsync(conn, tx, $"SELECT pg_advisory_xact_lock(hashtext('sluice:{_schema}'))", ct).ConfigureAwait(false);
        await ExecAsync(conn, tx, $"CREATE SCHEMA IF NOT EXISTS \"{_schema}\"", ct).ConfigureAwait(false);
        foreach (var (table, columns) in new[]
        {
            (ReminderTables.SourceEvent, ReminderTables.SourceEventColumns),
            (ReminderTables.AttorneyEvents, ReminderTables.AttorneyEventColumns),
            (ReminderTables.AttorneyReminder, ReminderTables.AttorneyReminderColumns),
        })
        {
            var defs = string.Join(", ", columns.Select(c => $"\"{c.Name}\" {c.Type.PostgresType()}{(c.Required ? " NOT NULL" : "")}"));
            await ExecAsync(conn, tx, $"CREATE TABLE IF NOT EXISTS {Name(table)} ({defs})", ct).ConfigureAwait(false);
        }

        await ExecAsync(conn, tx, $"CREATE INDEX IF NOT EXISTS attorney_events_case ON {Name(ReminderTables.AttorneyEvents)} (client_key, case_id, occurred_at)", ct).ConfigureAwait(false);
        await ExecAsync(conn, tx, $"CREATE INDEX IF NOT EXISTS attorney_reminder_key ON {Name(ReminderTables.AttorneyReminder)} (reminder_key, recorded_at)", ct).ConfigureAwait(false);
        await ExecAsync(conn, tx, $"CREATE TABLE IF NOT EXISTS {Name("checkpoints")} (key text PRIMARY KEY, value text NOT NULL, updated_at timestamptz NOT NULL)", ct).ConfigureAwait(false);
        await ExecAsync(conn, tx, $"CREATE TABLE IF NOT EXISTS {Name(LogCommits)} (sink text NOT NULL, log text NOT NULL, first_seq bigint NOT NULL, last_seq bigint NOT NULL, PRIMARY KEY (sink, log, first_seq))", ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
    }

    public async Task<string?> ReadCheckpointAsync(string key, CancellationToken ct)
    {
        var conn = await OpenAsync(ct).ConfigureAwait(false);
        await using var _ = conn.ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand($"SELECT value FROM {Name("checkpoints")} WHERE key = @k", conn);
        cmd.Parameters.AddWithValue("k", key);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
    }

    public async Task AppendAsync(NormalisedBatch batch, string letterSource, string checkpointKey, string checkpointValue, IPullFence? fence, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        // The store is another database than the lease's, so the lease is checked just before the batch's one
        // transaction here; a holder that lost it lands nothing (PullFencedException), its dead letters neither.
        fence?.Check();
        await KeepRejectedAsync(batch.Rejected, letterSource).ConfigureAwait(false);
        var conn = await OpenAsync(ct).ConfigureAwait(false);
        await using var _ = conn.ConfigureAwait(false);
        var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using var __ = tx.ConfigureAwait(false);
        await CopyAsync(conn, ReminderTables.SourceEvent, batch.SourceEvents, ct).ConfigureAwait(false);
        await CopyAsync(conn, ReminderTables.AttorneyEvents, batch.Events, ct).ConfigureAwait(false);
        await SetCheckpointAsync(conn, tx, checkpointKey, checkpointValue, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// A batch's dead letters, before its transaction: they are keyed by their position (the event's place in its
    /// source or log), so a batch written again after a crash, or by another worker, leaves one letter each. Not inside
    /// the transaction: on a cluster the dead-letter store is the shared one, whose writes wait for its global write
    /// lock, and the transaction would sit idle meanwhile, holding its locks past the server's idle limit. The store's
    /// writes are synchronous: off the socket thread first.
    /// </summary>
    private async Task KeepRejectedAsync(IReadOnlyList<RejectedEvent> rejected, string letterSource)
    {
        if (rejected.Count == 0) { return; }
        await Core.IO.InlineSocketCompletions.LeaveSocketThreadAsync().ConfigureAwait(false);
        foreach (var r in rejected)
        {
            _services.DeadLetters.Add(letterSource, r.Position, r.Reason, r.Payload, $"{letterSource}:{r.Position}");
        }
    }

    /// <summary>The table of the log's events the sinks committed (<see cref="AppendOnceAsync"/>).</summary>
    private const string LogCommits = "log_commits";

    public async Task<long> AppendOnceAsync(LogSequences events, string sink, Func<IReadOnlyList<SequenceRange>, NormalisedBatch> notCommitted, string letterSource, string checkpointKey, string checkpointValue, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(notCommitted);
        // Every rejection of the batch, an event another worker committed included (its letter is the same one).
        await KeepRejectedAsync(notCommitted([]).Rejected, letterSource).ConfigureAwait(false);
        var conn = await OpenAsync(ct).ConfigureAwait(false);
        await using var _ = conn.ConfigureAwait(false);
        var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using var __ = tx.ConfigureAwait(false);
        // One commit of the sink's log at a time, whichever worker makes it: what it reads as committed cannot change
        // before its own commit, so events in flight on two workers (an ack wait ran out while the first still wrote)
        // land with the first commit and are left out of the second.
        await using (var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext(@k))", conn, tx))
        {
            lockCmd.Parameters.AddWithValue("k", $"sluice:{_schema}:{LogCommits}:{sink}:{events.Log}");
            await lockCmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        // One past each end: a run that touches the batch's is joined to them.
        var near = events.Ranges.Count == 0 ? new List<SequenceRange>() : await CommittedRunsAsync(conn, tx, sink, events.Log, events.Ranges[0].First - 1, events.Ranges[^1].Last + 1, ct).ConfigureAwait(false);
        var fresh = events.Except(near);
        var batch = notCommitted(near);
        await CopyAsync(conn, ReminderTables.SourceEvent, batch.SourceEvents, ct).ConfigureAwait(false);
        await CopyAsync(conn, ReminderTables.AttorneyEvents, batch.Events, ct).ConfigureAwait(false);
        if (fresh.Count > 0)
        {
            await using (var delete = new NpgsqlCommand($"DELETE FROM {Name(LogCommits)} WHERE sink = @s AND log = @l AND first_seq = ANY(@f)", conn, tx))
            {
                delete.Parameters.AddWithValue("s", sink);
                delete.Parameters.AddWithValue("l", events.Log);
                delete.Parameters.AddWithValue("f", near.Select(r => r.First).ToArray());
                await delete.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            foreach (var run in SequenceRange.Coalesce(near.Concat(fresh.Ranges)))
            {
                await using var insert = new NpgsqlCommand($"INSERT INTO {Name(LogCommits)} (sink, log, first_seq, last_seq) VALUES (@s, @l, @f, @t)", conn, tx);
                insert.Parameters.AddWithValue("s", sink);
                insert.Parameters.AddWithValue("l", events.Log);
                insert.Parameters.AddWithValue("f", run.First);
                insert.Parameters.AddWithValue("t", run.Last);
                await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }

        await SetCheckpointAsync(conn, tx, checkpointKey, checkpointValue, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        return events.Count - fresh.Count;
    }

    private async Task<List<SequenceRange>> CommittedRunsAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string sink, string log, long first, long last, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            $"SELECT first_seq, last_seq FROM {Name(LogCommits)} WHERE sink = @s AND log = @l AND last_seq >= @f AND first_seq <= @t ORDER BY first_seq", conn, tx);
        cmd.Parameters.AddWithValue("s", sink);
        cmd.Parameters.AddWithValue("l", log);
        cmd.Parameters.AddWithValue("f", first);
        cmd.Parameters.AddWithValue("t", last);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var runs = new List<SequenceRange>();
        while (await reader.ReadAsync(ct).ConfigureAwait(false)) { runs.Add(new SequenceRange(reader.GetInt64(0), reader.GetInt64(1))); }
        return runs;
    }

    private async Task SetCheckpointAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string key, string value, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            $"INSERT INTO {Name("checkpoints")} (key, value, updated_at) VALUES (@k, @v, now()) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at", conn, tx);
        cmd.Parameters.AddWithValue("k", key);
        cmd.Parameters.AddWithValue("v", value);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<DueReminder>> DueAsync(ReminderRule rule, DateTimeOffset asOf, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(rule);
        var events = Name(ReminderTables.AttorneyEvents);
        var reminders = Name(ReminderTables.AttorneyReminder);
        var conn = await OpenAsync(ct).ConfigureAwait(false);
        await using var _ = conn.ConfigureAwait(false);
        var view = ReminderRuleSql.Ready(rule, SqlDialect.Postgres, events, reminders, "now()");
        await using (var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false))
        {
            await ExecAsync(conn, tx, $"SELECT pg_advisory_xact_lock(hashtext('sluice:{_schema}'))", ct).ConfigureAwait(false);
            await ExecAsync(conn, tx, $"DROP VIEW IF EXISTS {Name(ReminderTables.ReadyView)}", ct).ConfigureAwait(false);
            await ExecAsync(conn, tx, $"CREATE VIEW {Name(ReminderTables.ReadyView)} AS {view}", ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
        }

        await using var cmd = new NpgsqlCommand(ReminderRuleSql.Ready(rule, SqlDialect.Postgres, events, reminders, ReminderRuleSql.Instant(asOf)), conn);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var list = new List<DueReminder>();
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            list.Add(new DueReminder(
                reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), Convert.ToInt32(reader.GetValue(4), CultureInfo.InvariantCulture),
                reader.GetFieldValue<DateTime>(5), reader.GetFieldValue<DateTime>(6), reader.IsDBNull(8) ? null : reader.GetString(8), reader.GetString(9)));
        }

        return list;
    }

    public async Task PublishAsync(ReminderOutbox outbox, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(outbox);
        var outcomes = outbox.Unpublished();
        if (outcomes.Count == 0)
        {
            return;
        }

        // The log row goes in first: a crash before the outbox notes it writes the same outcome again, which the
        // "latest outcome per reminder" reading of the log does not notice.
        var conn = await OpenAsync(ct).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            await CopyAsync(conn, ReminderTables.AttorneyReminder, LakeReminderWarehouse.OutcomeBatch(outcomes), ct).ConfigureAwait(false);
        }

        outbox.MarkPublished(outcomes);
    }

    public ValueTask DisposeAsync() => _source.DisposeAsync();

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken ct)
    {
        try
        {
            return await _source.OpenConnectionAsync(ct).ConfigureAwait(false);
        }
        catch (NpgsqlException e)
        {
            throw new SluiceException($"cannot reach {_describe}: {e.Message}", e);
        }
    }

    private async Task CopyAsync(NpgsqlConnection conn, string table, ColumnBatch batch, CancellationToken ct)
    {
        if (batch.Count == 0)
        {
            return;
        }

        var fields = batch.Schema.Fields;
        var columns = string.Join(", ", fields.Select(f => $"\"{f.Name}\""));
        var writer = await conn.BeginBinaryImportAsync($"COPY {Name(table)} ({columns}) FROM STDIN (FORMAT BINARY)", ct).ConfigureAwait(false);
        await using (writer.ConfigureAwait(false))
        {
            for (var row = 0; row < batch.Count; row++)
            {
                await writer.StartRowAsync(ct).ConfigureAwait(false);
                for (var c = 0; c < fields.Count; c++)
                {
                    var value = batch.Value(c, row);
                    if (value is null)
                    {
                        await writer.WriteNullAsync(ct).ConfigureAwait(false);
                        continue;
                    }

                    switch (fields[c].Type)
                    {
                        case FieldType.String: await writer.WriteAsync((string)value, NpgsqlDbType.Text, ct).ConfigureAwait(false); break;
                        case FieldType.Integer: await writer.WriteAsync((long)value, NpgsqlDbType.Bigint, ct).ConfigureAwait(false); break;
                        case FieldType.Double: await writer.WriteAsync((double)value, NpgsqlDbType.Double, ct).ConfigureAwait(false); break;
                        case FieldType.Boolean: await writer.WriteAsync((bool)value, NpgsqlDbType.Boolean, ct).ConfigureAwait(false); break;
                        case FieldType.Timestamp: await writer.WriteAsync(DateTime.SpecifyKind((DateTime)value, DateTimeKind.Utc), NpgsqlDbType.TimestampTz, ct).ConfigureAwait(false); break;
                        case FieldType.Date: await writer.WriteAsync((DateOnly)value, NpgsqlDbType.Date, ct).ConfigureAwait(false); break;
                    }
                }
            }

            await writer.CompleteAsync(ct).ConfigureAwait(false);
        }
    }

    private static async Task ExecAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
