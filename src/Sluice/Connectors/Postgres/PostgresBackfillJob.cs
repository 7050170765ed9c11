using System.Globalization;
using Npgsql;
using Microsoft.Extensions.Logging;
using Sluice.Cluster;
using Sluice.Connectors.Http.Ingest;
using Sluice.Connectors.Nats;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.IO;
using Sluice.Core.Metadata;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Resilience;
using Sluice.Core.Schema;
using Sluice.Jobs;

namespace Sluice.Connectors.Postgres;

/// <summary>Options of the <c>postgres_backfill</c> job, read from the recipe's <c>jobs:</c> entry and validated at load.</summary>
public sealed class PostgresBackfillOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly PostgresBackfillOptions Default = OptionDefaults.Of<PostgresBackfillOptions>();

    /// <summary>The server (the <c>connection:</c> block, else <c>PG*</c> environment variables).</summary>
    public required PostgresConnectionOptions Connection { get; init; }

    /// <summary>The pipeline whose steps and sinks the rows go through (required).</summary>
    public required string Pipeline { get; init; }

    /// <summary>Schema of the table (default <c>public</c>).</summary>
    public string Schema { get; init; } = "public";

    /// <summary>The table read (required), as the source names it, so the steps treat its rows like streamed ones.</summary>
    public required string Table { get; init; }

    /// <summary>The time column the range applies to (required).</summary>
    public required string Time { get; init; }

    /// <summary>An integer key, read in order to page through the range (default <c>event_id</c>).</summary>
    public string Key { get; init; } = "event_id";

    /// <summary>Rows per batch (default 10,000).</summary>
    public int BatchRows { get; init; } = 10_000;

    /// <summary>Only these sinks of the pipeline (default: all).</summary>
    public IReadOnlyList<string> Sinks { get; init; } = [];

    public static PostgresBackfillOptions Parse(ConfigMap map) => new()
    {
        Connection = PostgresConnectionOptions.Parse(map, "postgres_backfill"),
        Pipeline = map.RequiredString("pipeline", doc: "The pipeline whose steps and sinks the rows go through (required)."),
        Schema = map.String("schema", Default.Schema, doc: "Schema of the table.") ?? Default.Schema,
        Table = map.RequiredString("table", doc: "The table read (required), as the source names it, so the steps treat its rows like streamed ones."),
        Time = map.RequiredString("time", doc: "The time column the range applies to (required)."),
        Key = map.String("key", Default.Key, doc: "An integer key, read in order to page through the range.") ?? Default.Key,
        BatchRows = map.Int("batch_rows", Default.BatchRows, 1, 1_000_000, doc: "Rows per batch."),
        Sinks = map.StringList("sinks", doc: "Only these sinks of the pipeline."),
    };
}

public sealed class PostgresBackfillJobType : IJobType
{
    public string Name => "postgres_backfill";

    public IJobFactory Parse(ConfigMap options, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(recipe);
        // The job's name (the map is jobs.<name>): its progress on a cluster is kept under it.
        var job = options.KeyPath.StartsWith("jobs.", StringComparison.Ordinal) ? options.KeyPath["jobs.".Length..] : options.KeyPath;
        return new Factory(recipe.Folder, recipe.Components ?? Components.Create(), PostgresBackfillOptions.Parse(options), job);
    }

    private sealed class Factory(string recipeFolder, ComponentRegistry components, PostgresBackfillOptions options, string job) : IJobFactory, IRowFeedingJob, IClusterJobFactory, IResumableJob
    {
        public string Pipeline => options.Pipeline;

        public IReadOnlyList<string> Sinks => options.Sinks;

        public IJob Create(IEngineServices services) => new PostgresBackfillJob(services, recipeFolder, components, options, job);

        public string? ClusterProblem(Func<string, string?> variable) => PostgresBackfillJob.ClusterProblem(options, variable);
    }
}

/// <summary>
/// Reads a table's rows by time range (in key order, a page at a time) and sends them through a pipeline's own steps
/// and sinks, exactly as if they had been streamed: the same enrichment, the same idempotent writes. Running it over
/// data already streamed changes nothing (counts, rows, ids seen by the API).
/// </summary>
/// <remarks>
/// In cluster mode the pages go through the cluster's log instead (<see cref="BackfillLog"/>): each is published into
/// the pipeline's change stream in JetStream, whose consumers on every worker run the steps and sinks, and the
/// backfill's progress (<see cref="PgBackfillProgress"/>) is recorded in the shared store after each page JetStream
/// stored, both while the run's lease row is locked (<see cref="JobFence"/>). A run whose runner died is taken over
/// (trigger <c>rerun</c>, <see cref="IResumableJob"/>) and goes on after the last page recorded; the page its
/// predecessor published and did not record comes again with the same message ids, and JetStream stores it once.
/// </remarks>
public sealed class PostgresBackfillJob(IEngineServices services, string recipeFolder, ComponentRegistry components, PostgresBackfillOptions options, string job) : IJob
{
    /// <summary>Reached when JetStream stored a page of a cluster's backfill and its progress is not yet recorded (tests SIGKILL the runner there, <see cref="CrashPoint"/>).</summary>
    public const string PagePublished = "postgres_backfill.page-published";

    /// <summary>
    /// How a page JetStream did not store (NATS out of reach, no quorum) is published again: after a second, the pause
    /// doubling up to 30 s, nine attempts in all (two minutes of pauses) before the run fails: a job is not a relay that
    /// must wait for ever.
    /// </summary>
    public static readonly RetryOptions PublishRetry = new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), 9);

    /// <summary>
    /// The longest job lease with which a cluster's backfill keeps its promise: the page a dead runner published and did
    /// not record is published again by the run that takes over, at most a lease and its third (the take-over's look)
    /// after, and JetStream recognises it only within the stream's deduplication window.
    /// </summary>
    public static readonly TimeSpan LongestLease = CdcChangeLog.DedupWindow / 2;

    private readonly ILogger _log = services.Logging.CreateLogger("Sluice.Connectors.Postgres.PostgresBackfillJob");

    /// <summary>Why cluster mode cannot run a backfill with these options (as configured, or with these variables), or null.</summary>
    public static string? ClusterProblem(PostgresBackfillOptions options, Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(variable);
        if (options.Sinks.Count > 0)
        {
            return $"its pages go through the cluster's log to every sink of pipeline '{options.Pipeline}', so it cannot take only some of them (sinks: {string.Join(", ", options.Sinks)}); remove sinks: or run it from one process without --cluster";
        }

        if (ClusterOptions.CdcByHolder(variable))
        {
            return $"its pages go through pipeline '{options.Pipeline}''s change stream in JetStream, which {ClusterOptions.CdcVariable}=holder does not use; run it with {ClusterOptions.CdcVariable}=jetstream (the default) or from one process without --cluster";
        }

        var lease = JobLeases.TtlFromEnvironment(variable);
        return lease > LongestLease
            ? $"{JobLeases.TtlVariable} is {lease.TotalSeconds:0} s: a page its runner published before it died is published again by the run that takes over, after the lease, and JetStream recognises it only within {CdcChangeLog.DedupWindow.TotalMinutes:0} minutes; set at most {LongestLease.TotalSeconds:0} s"
            : null;
    }

    /// <summary>Why cluster mode cannot run a backfill into <paramref name="pipeline"/> (a pipeline whose stream is no change stream), or null.</summary>
    public static string? PipelineProblem(PipelineDefinition pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        return pipeline.Source is PostgresCdcSourceFactory ? null
            : $"its pages go through the cluster's log as changes of pipeline '{pipeline.Name}''s postgres_cdc stream, and that pipeline's source is '{pipeline.SourceType}'; run it from one process without --cluster";
    }

    public async Task<JobOutcome> RunAsync(JobRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var recipe = new RecipeLoader(components).Load(recipeFolder);
        var pipeline = recipe.Pipelines.FirstOrDefault(p => p.Name == options.Pipeline)
            ?? throw new SluiceException($"postgres_backfill: recipe '{recipe.Name}' has no pipeline '{options.Pipeline}' (pipelines: {string.Join(", ", recipe.Pipelines.Select(p => p.Name))}).");
        if (services.Cluster is { } cluster)
        {
            return await RunInClusterAsync(request, recipe.Name, pipeline, cluster, ct).ConfigureAwait(false);
        }

        var (from, to) = Range(request) ?? throw NoRange();
        var cdc = (pipeline.Source as PostgresCdcSourceFactory)?.Options.Table(options.Table)
            ?? new CdcTable(options.Table, ChangePolicy.Ignore, ChangePolicy.Ignore);
        var steps = pipeline.Steps.Select(s => s.Create(services)).ToList();
        var sinks = pipeline.Sinks.Select(s => s.Create(services)).ToList();
        var unknown = options.Sinks.Where(n => sinks.All(s => s.Name != n)).ToList();
        if (unknown.Count > 0)
        {
            throw new SluiceException($"postgres_backfill: pipeline '{options.Pipeline}' has no sink named {string.Join(", ", unknown)} (sinks: {string.Join(", ", sinks.Select(s => s.Name))}).");
        }

        var chosen = options.Sinks.Count == 0 ? sinks : sinks.Where(s => options.Sinks.Contains(s.Name)).ToList();
        try
        {
            await using var connection = new NpgsqlConnection(options.Connection.ConnectionString("sluice-backfill"));
            await connection.OpenAsync(ct).ConfigureAwait(false);
            var columns = await ColumnsAsync(connection, ct).ConfigureAwait(false);
            var shape = new PgTableShape(cdc, columns, options.BatchRows);
            // A real total for the progress bar (and its time remaining), only when someone watches: it is one more scan of the range.
            var total = request.Progress is null ? 0 : await CountAsync(connection, from, to, ct).ConfigureAwait(false);
            request.Progress?.Report(new JobProgress(0, total, "rows"));
            var (rows, batches) = await PagesAsync(connection, columns, shape, from, to, null, async (batch, after, done) =>
            {
                foreach (var step in steps) { batch = await step.ApplyAsync(batch, ct).ConfigureAwait(false); }
                foreach (var sink in chosen) { await sink.WriteAsync(batch, $"backfill:{recipe.Name}", ct).ConfigureAwait(false); }
                request.Progress?.Report(new JobProgress(done, Math.Max(total, done), $"rows, up to {options.Key} {after}"));
            }, ct).ConfigureAwait(false);

            return new JobOutcome(rows, rows, $"{rows} rows of {options.Schema}.{options.Table} from {Instant(from)} to {Instant(to)} sent through {string.Join(", ", chosen.Select(s => s.Name))} in {batches} batches");
        }
        finally
        {
            foreach (var sink in sinks) { await sink.DisposeAsync().ConfigureAwait(false); }
        }
    }

    /// <summary>
    /// Cluster mode: each page published into the pipeline's change stream, and the backfill's progress recorded, under
    /// the run's lease; a re-run (no range, trigger <c>rerun</c>) resumes the backfill its interrupted predecessor left, and
    /// so does a backfill of the same range as one that stopped unfinished.
    /// </summary>
    private async Task<JobOutcome> RunInClusterAsync(JobRequest request, string recipe, PipelineDefinition pipeline, ClusterOptions cluster, CancellationToken ct)
    {
        if ((PipelineProblem(pipeline) ?? ClusterProblem(options, Environment.GetEnvironmentVariable)) is { } problem)
        {
            throw new SluiceException($"postgres_backfill {recipe}/{job} does not run in cluster mode as configured: {problem}");
        }

        var source = (PostgresCdcSourceFactory)pipeline.Source;
        var checkpoints = new CheckpointStore(services.Metadata, services.Time);
        var key = PgBackfillProgress.KeyOf(recipe, job);
        PgBackfillProgress progress;
        long? resumedAfter = null;
        var asked = Range(request);
        var unfinished = PgBackfillProgress.Load(checkpoints, key) is { Done: false } u ? u : null;
        // A re-run (no range) resumes the backfill its interrupted predecessor left; so does a backfill asked for the same
        // range as one that stopped unfinished (JetStream refused a page past the retry, or its re-runs were spent), under
        // its id, after its last stored page, so that what it stored is not stored again (a lake sink appends). A
        // backfill of another range, or of one that finished, starts anew.
        if (unfinished is not null && (asked is { } same ? same.From == unfinished.From && same.To == unfinished.To : request.Trigger == "rerun"))
        {
            progress = unfinished;
            resumedAfter = unfinished.After;
            PostgresLog.BackfillResumed(_log, $"{recipe}/{job}", unfinished.Id, Instant(unfinished.From), Instant(unfinished.To), unfinished.After?.ToString(CultureInfo.InvariantCulture) ?? "the start", unfinished.Rows);
        }
        else if (asked is { } fresh)
        {
            progress = PgBackfillProgress.Start(fresh.From, fresh.To);
            await RecordAsync(progress, checkpoints, key).ConfigureAwait(false);
        }
        else if (request.Trigger == "rerun")
        {
            return new JobOutcome(0, 0, "no backfill of this job was left unfinished: nothing to resume");
        }
        else
        {
            throw NoRange();
        }

        var log = new BackfillLog(cluster, recipe, pipeline.Name, source, services.Logging);
        await using (log.ConfigureAwait(false))
        {
            var retry = PublishRetrier(log.StreamName, services.Time, _log);
            await using var connection = new NpgsqlConnection(options.Connection.ConnectionString("sluice-backfill"));
            await connection.OpenAsync(ct).ConfigureAwait(false);
            var columns = await ColumnsAsync(connection, ct).ConfigureAwait(false);
            // The rows go to the stream's partitions by the table's key, as the relay sends the table's changes: its
            // primary key (else replica identity) as the catalogue says, else the paging key.
            var catalog = (await PgSlotAdmin.CatalogAsync(connection, ct).ConfigureAwait(false)).FirstOrDefault(t => t.Schema == options.Schema && t.Name == options.Table);
            var cdc = (source.Options.Table(options.Table) ?? new CdcTable(options.Table, ChangePolicy.Ignore, ChangePolicy.Ignore))
                with { Key = catalog.Key is { Length: > 0 } k ? k : [options.Key] };
            var shape = new PgTableShape(cdc, columns, options.BatchRows);
            var total = request.Progress is null ? 0 : await CountAsync(connection, progress.From, progress.To, ct).ConfigureAwait(false);
            request.Progress?.Report(new JobProgress(progress.Rows, Math.Max(total, progress.Rows), "rows"));
            await PagesAsync(connection, columns, shape, progress.From, progress.To, progress.After, async (batch, after, done) =>
            {
                var next = progress with { After = after, Rows = progress.Rows + batch.Count, Pages = progress.Pages + 1 };
                await PublishAsync(log, retry, batch, progress, next, checkpoints, key, ct).ConfigureAwait(false);
                progress = next;
                request.Progress?.Report(new JobProgress(progress.Rows, Math.Max(total, progress.Rows), $"rows, up to {options.Key} {after}"));
            }, ct).ConfigureAwait(false);

            progress = progress with { Done = true };
            await RecordAsync(progress, checkpoints, key).ConfigureAwait(false);
            var resumed = resumedAfter is { } a ? $", resumed after {options.Key} {a.ToString(CultureInfo.InvariantCulture)}" : "";
            return new JobOutcome(progress.Rows, progress.Rows,
                $"{progress.Rows} rows of {options.Schema}.{options.Table} from {Instant(progress.From)} to {Instant(progress.To)} published in {progress.Pages} pages to JetStream stream {log.StreamName} (backfill {progress.Id}{resumed}); the workers of pipeline '{pipeline.Name}' write them to its sinks");
        }
    }

    /// <summary>The retry of a page's publish into JetStream stream <paramref name="stream"/> (<see cref="PublishRetry"/>), each refusal logged.</summary>
    internal static TransientRetry PublishRetrier(string stream, TimeProvider time, ILogger log) =>
        new($"postgres_backfill: JetStream stream {stream}", PublishRetry, time, e => e is EventsNotStoredException)
        {
            Retrying = a => PostgresLog.BackfillPageNotStored(log, stream, a.Error.Message, a.Attempt, PublishRetry.Attempts ?? 0, (int)a.Delay.TotalSeconds),
        };

    /// <summary>
    /// Publishes a page and records the progress it makes while the run's lease row is locked: a runner whose lease was
    /// taken over publishes nothing more. A page JetStream does not store is published again as <see cref="PublishRetry"/>
    /// says, the lease let go between tries (another worker's take-over of other jobs waits on no row).
    /// </summary>
    private async Task PublishAsync(BackfillLog log, TransientRetry retry, RecordBatch page, PgBackfillProgress last, PgBackfillProgress next, CheckpointStore checkpoints, string key, CancellationToken ct)
    {
        try
        {
            await retry.RunAsync(async c =>
            {
                // The lease is locked by a synchronous store call: never on the socket thread (docs/ARCHITECTURE.md).
                await InlineSocketCompletions.LeaveSocketThreadAsync().ConfigureAwait(false);
                using (JobFence.Hold())
                {
                    await log.PublishAsync(page, next.Id, options.Key, c).ConfigureAwait(false);
                    CrashPoint.Reach(PagePublished);
                    await InlineSocketCompletions.LeaveSocketThreadAsync().ConfigureAwait(false);
                    next.Save(checkpoints, key);
                }
            }, ct).ConfigureAwait(false);
        }
        catch (RetriesExhaustedException e)
        {
            throw NotStored(log.StreamName, options.Key, last, next, e);
        }
    }

    /// <summary>
    /// Why the backfill stopped: the page JetStream did not store in every attempt, named by the keys it spans (it
    /// starts after the last page recorded, <paramref name="last"/>, and ends at <paramref name="next"/>'s), and the rows
    /// published before it.
    /// </summary>
    internal static SluiceException NotStored(string stream, string keyColumn, PgBackfillProgress last, PgBackfillProgress next, RetriesExhaustedException e)
    {
        ArgumentNullException.ThrowIfNull(last);
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(e);
        var start = last.After is { } a ? $"after {keyColumn} {a.ToString(CultureInfo.InvariantCulture)}" : "at the start";
        return new SluiceException($"postgres_backfill: JetStream stream {stream} did not store the page {start} (up to {keyColumn} {next.After?.ToString(CultureInfo.InvariantCulture)}) in {e.Attempts} attempts ({e.InnerException?.Message}); the backfill stopped there ({last.Rows} rows published in {last.Pages} pages); once NATS is back, the same `sluice backfill` (the same --from and --to) resumes it after them", e);
    }

    private static async Task RecordAsync(PgBackfillProgress progress, CheckpointStore checkpoints, string key)
    {
        await InlineSocketCompletions.LeaveSocketThreadAsync().ConfigureAwait(false);
        using (JobFence.Hold()) { progress.Save(checkpoints, key); }
    }

    /// <summary>The range asked for: <c>--from</c>/<c>--to</c> as instants, or as days (the end day inclusive); null when none was given (a re-run).</summary>
    private static (DateTimeOffset From, DateTimeOffset To)? Range(JobRequest request)
    {
        if (request.FromTime is null && request.From is null) { return null; }
        var from = request.FromTime ?? new DateTimeOffset(request.From!.Value.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        var to = request.ToTime ?? (request.To is { } t ? new DateTimeOffset(t.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).AddDays(1) : from.AddDays(1));
        return (from, to);
    }

    private static SluiceException NoRange() => new("postgres_backfill: give a range: sluice backfill <recipe>/<job> --from ISO --to ISO.");

    private static string Instant(DateTimeOffset at) => at.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>The table's columns, checked to hold the time and key columns.</summary>
    private async Task<List<FieldSpec>> ColumnsAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var columns = await PgSnapshotReader.ColumnsAsync(connection, null, options.Schema, options.Table, ct).ConfigureAwait(false);
        if (columns.Count == 0) { throw new SluiceException($"postgres_backfill: table {options.Schema}.{options.Table} not found in database '{options.Connection.Database}'."); }
        foreach (var name in new[] { options.Time, options.Key }.Where(n => columns.All(c => c.Name != n)))
        {
            throw new SluiceException($"postgres_backfill: column '{name}' is not in {options.Schema}.{options.Table}.");
        }

        return columns;
    }

    /// <summary>
    /// Reads the range a page at a time in key order, after <paramref name="after"/> when given, and hands each page to
    /// <paramref name="page"/> with the key it ends at and the rows read so far; returns the rows and pages read.
    /// </summary>
    private async Task<(long Rows, int Pages)> PagesAsync(NpgsqlConnection connection, List<FieldSpec> columns, PgTableShape shape, DateTimeOffset from, DateTimeOffset to, long? after,
        Func<RecordBatch, long, long, Task> page, CancellationToken ct)
    {
        var keyIndex = columns.FindIndex(c => c.Name == options.Key);
        // Qualified, because the text casts keep the column names and ORDER BY would otherwise sort the text.
        var select = string.Join(", ", columns.Select(c => "src." + PgSlotAdmin.Quote(c.Name) + "::text"));
        var table = $"{PgSlotAdmin.Quote(options.Schema)}.{PgSlotAdmin.Quote(options.Table)}";
        long rows = 0;
        var pages = 0;
        while (true)
        {
            await using var cmd = new NpgsqlCommand(
                $"SELECT {select} FROM {table} AS src WHERE src.{PgSlotAdmin.Quote(options.Time)} >= $1 AND src.{PgSlotAdmin.Quote(options.Time)} < $2 " +
                $"AND ($3::bigint IS NULL OR src.{PgSlotAdmin.Quote(options.Key)} > $3) ORDER BY src.{PgSlotAdmin.Quote(options.Key)} LIMIT {options.BatchRows}", connection);
            cmd.Parameters.AddWithValue(from.UtcDateTime);
            cmd.Parameters.AddWithValue(to.UtcDateTime);
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)after ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint });
            var read = 0;
            await using (var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    for (var i = 0; i < columns.Count; i++)
                    {
                        if (!reader.IsDBNull(i) && !shape.Set(i, reader.GetString(i)))
                        {
                            // Never a NULL in its place: the backfill stops, naming the value (the stream dead-letters such a row).
                            throw new SluiceException($"postgres_backfill: {options.Schema}.{options.Table}.{columns[i].Name} holds '{reader.GetString(i)}', which is not a {columns[i].Type.Name()} value as Sluice reads Postgres's text.");
                        }
                    }

                    after = long.Parse(reader.GetString(keyIndex), CultureInfo.InvariantCulture);
                    shape.Commit("r", 0);
                    read++;
                }
            }

            if (read == 0) { break; }
            rows += read;
            pages++;
            await page(new RecordBatch(shape.Builder.Flush(), 0), after!.Value, rows).ConfigureAwait(false);
            if (read < options.BatchRows) { break; }
        }

        return (rows, pages);
    }

    private async Task<long> CountAsync(NpgsqlConnection connection, DateTimeOffset from, DateTimeOffset to, CancellationToken ct)
    {
        var table = $"{PgSlotAdmin.Quote(options.Schema)}.{PgSlotAdmin.Quote(options.Table)}";
        await using var cmd = new NpgsqlCommand($"SELECT count(*) FROM {table} WHERE {PgSlotAdmin.Quote(options.Time)} >= $1 AND {PgSlotAdmin.Quote(options.Time)} < $2", connection);
        cmd.Parameters.AddWithValue(from.UtcDateTime);
        cmd.Parameters.AddWithValue(to.UtcDateTime);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }
}
