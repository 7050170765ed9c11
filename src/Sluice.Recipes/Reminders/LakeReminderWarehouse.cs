using System.Globalization;
using DuckDB.NET.Data;
using Sluice.Connectors.Pull;
using Sluice.Core.Metadata;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Lake;

namespace Sluice.Recipes.Reminders;

/// <summary>
/// The tables in the embedded warehouse: Parquet in the lake, partitioned by the UTC day the rows were written
/// (<c>day</c>), each append one manifest transaction that also holds the input's checkpoint and its dead letters.
/// The rule runs in DuckDB over the committed files; <c>vw_reminder_ready</c> is a stored view.
/// </summary>
public sealed class LakeReminderWarehouse(IEngineServices services, string zone) : IReminderWarehouse
{
    private readonly CheckpointStore _checkpoints = new(services.Metadata, services.Time);
    private readonly LakeTable _sourceEvent = ReminderTables.Lake(zone, ReminderTables.SourceEvent);
    private readonly LakeTable _events = ReminderTables.Lake(zone, ReminderTables.AttorneyEvents);
    private readonly LakeTable _reminders = ReminderTables.Lake(zone, ReminderTables.AttorneyReminder);

    public string Describe => $"the embedded warehouse, zone {zone}";

    public string Name(string table) => $"{LakeQueryEngine.Quote(zone)}.{LakeQueryEngine.Quote(table)}";

    public Task InitialiseAsync(CancellationToken ct)
    {
        services.Lake.Register(_sourceEvent);
        services.Lake.Register(_events);
        services.Lake.Register(_reminders);
        return Task.CompletedTask;
    }

    public Task<string?> ReadCheckpointAsync(string key, CancellationToken ct) => Task.FromResult(_checkpoints.Get(key));

    public async Task AppendAsync(NormalisedBatch batch, string letterSource, string checkpointKey, string checkpointValue, IPullFence? fence, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        // In a cluster the lake's manifest, this checkpoint and the pull's lease are all in the shared metadata store:
        // the lease's row is read (locked for share) in the commit's own transaction, so a holder paused past its lease
        // commits nothing after a take-over (its published files are orphans, swept), and a take-over waits for a page
        // being committed, whose watermark the new holder then reads.
        await CommitAsync(batch, letterSource, checkpointKey, checkpointValue, fence is null ? null : (c, tx) => fence.Check(c, tx), ct).ConfigureAwait(false);
    }

    /// <summary>Stages the batch's rows and commits them with its dead letters, the checkpoint and <paramref name="alsoInTransaction"/>, in one manifest transaction.</summary>
    private async Task CommitAsync(NormalisedBatch batch, string letterSource, string checkpointKey, string checkpointValue, Action<System.Data.Common.DbConnection, System.Data.Common.DbTransaction>? alsoInTransaction, CancellationToken ct)
    {
        using var stager = services.Lake.BeginStaging($"{zone}-events");
        await stager.AddAsync(_sourceEvent, batch.SourceEvents, Day(batch.SourceEvents, 3), ct).ConfigureAwait(false);
        await stager.AddAsync(_events, batch.Events, Day(batch.Events, 12), ct).ConfigureAwait(false);
        services.Lake.Commit(stager, (c, tx) =>
        {
            alsoInTransaction?.Invoke(c, tx);
            foreach (var r in batch.Rejected)
            {
                services.DeadLetters.Add(c, tx, letterSource, r.Position, r.Reason, r.Payload, $"{letterSource}:{r.Position}");
            }

            _checkpoints.Set(checkpointKey, checkpointValue, c, tx);
        });
    }

    public async Task<long> AppendOnceAsync(LogSequences events, string sink, Func<IReadOnlyList<SequenceRange>, NormalisedBatch> notCommitted, string letterSource, string checkpointKey, string checkpointValue, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(notCommitted);
        for (var attempt = 1; ; attempt++)
        {
            // The lake sink's record (lake_log_commits, in the shared manifest): the files are staged before the commit's
            // transaction, so what was committed is looked up first, and the commit checks under the lake's write lock
            // that none of it was committed meanwhile by another worker (the same events in flight on two workers).
            var done = services.Lake.LogCommits.Committed(sink, events);
            var fresh = events.Except(done);
            var batch = notCommitted(done);
            try
            {
                await CommitAsync(batch, letterSource, checkpointKey, checkpointValue, (c, tx) => services.Lake.LogCommits.Record(c, tx, sink, fresh), ct).ConfigureAwait(false);
                return events.Count - fresh.Count;
            }
            catch (LakeConflictException) when (attempt < 3)
            {
                // What this commit staged is left to the orphan sweep, and the look-up is done again.
            }
        }
    }

    public async Task<IReadOnlyList<DueReminder>> DueAsync(ReminderRule rule, DateTimeOffset asOf, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(rule);
        var events = Name(ReminderTables.AttorneyEvents);
        var reminders = Name(ReminderTables.AttorneyReminder);
        var view = ReminderRuleSql.Ready(rule, SqlDialect.DuckDb, events, reminders, "now()");
        // Reading first applies the views' table migration, which must not run inside the transaction below.
        _ = services.Lake.Views.All();
        using (var c = services.Metadata.Connect())
        using (var tx = c.BeginTransaction())
        {
            services.Lake.Views.Save(c, tx, $"{zone}.{ReminderTables.ReadyView}", view, services.Time.GetUtcNow());
            tx.Commit();
        }

        var sql = ReminderRuleSql.Ready(rule, SqlDialect.DuckDb, "rule_events", "rule_reminders", ReminderRuleSql.Instant(asOf));
        return await Task.Run(() =>
        {
            // The job reads the committed files directly: same data as the views, without their schema merging.
            using var db = DuckDb.OpenMemory(Path.Combine(services.Data.Root, "tmp", "duckdb"));
            LakeQueryEngine.Exec(db, $"CREATE VIEW rule_events AS {FilesOf(_events)}");
            LakeQueryEngine.Exec(db, $"CREATE VIEW rule_reminders AS {FilesOf(_reminders)}");
            using var cmd = db.CreateCommand();
            cmd.CommandText = sql;
            using var reader = cmd.ExecuteReader();
            var list = new List<DueReminder>();
            while (reader.Read())
            {
                list.Add(new DueReminder(
                    reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), Convert.ToInt32(reader.GetValue(4), CultureInfo.InvariantCulture),
                    Utc(reader.GetValue(5)), Utc(reader.GetValue(6)), reader.IsDBNull(8) ? null : reader.GetString(8), reader.GetString(9)));
            }

            return (IReadOnlyList<DueReminder>)list;
        }, ct).ConfigureAwait(false);
    }

    public async Task PublishAsync(ReminderOutbox outbox, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(outbox);
        var outcomes = outbox.Unpublished();
        if (outcomes.Count == 0)
        {
            return;
        }

        var batch = OutcomeBatch(outcomes);
        using var stager = services.Lake.BeginStaging($"{zone}-reminders");
        await stager.AddAsync(_reminders, batch, Day(batch, 8), ct).ConfigureAwait(false);
        services.Lake.Commit(stager, (c, tx) => outbox.MarkPublished(c, tx, outcomes));
    }

    public static ColumnBatch OutcomeBatch(IReadOnlyList<ReminderOutcome> outcomes)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        Array Col<T>(Func<ReminderOutcome, T> f) => outcomes.Select(f).ToArray();
        return new ColumnBatch(new TableSchema(ReminderTables.AttorneyReminder, ReminderTables.AttorneyReminderColumns),
        [
            Col<string?>(o => o.Key), Col<string?>(o => o.Rule), Col<string?>(o => o.ClientKey), Col<string?>(o => o.CaseId),
            Col<long?>(o => o.Occurrence), Col<DateTime?>(o => o.ClosureAt), Col<DateTime?>(o => o.DueAt), Col<string?>(o => o.Status),
            Col<DateTime?>(o => o.RecordedAt), Col<long?>(o => o.Attempts), Col<string?>(o => o.MessageId), Col<string?>(o => o.Detail),
        ], outcomes.Count);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private string FilesOf(LakeTable table)
    {
        var files = services.Lake.Files(table.QualifiedName);
        return files.Count == 0 ? services.Query.Source(table) : $"SELECT * FROM read_parquet([{string.Join(", ", files.Select(LakeQueryEngine.Literal))}])";
    }

    private static Func<int, string> Day(ColumnBatch batch, int timeColumn)
    {
        var times = batch.Column<DateTime>(timeColumn);
        return row => (times[row] ?? DateTime.UnixEpoch).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
    }

    private static DateTime Utc(object value) => value switch
    {
        DateTimeOffset o => o.UtcDateTime,
        DateTime d => DateTime.SpecifyKind(d, DateTimeKind.Utc),
        _ => throw new InvalidCastException($"expected a timestamp, got {value.GetType().Name}"),
    };
}
