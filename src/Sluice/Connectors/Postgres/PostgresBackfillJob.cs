using System.Globalization;
using Npgsql;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

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
        ArgumentNullException.ThrowIfNull(recipe);
        return new Factory(recipe.Folder, recipe.Components ?? Components.Create(), PostgresBackfillOptions.Parse(options));
    }

    private sealed class Factory(string recipeFolder, ComponentRegistry components, PostgresBackfillOptions options) : IJobFactory, IRowFeedingJob
    {
        public string Pipeline => options.Pipeline;

        public IReadOnlyList<string> Sinks => options.Sinks;

        public IJob Create(IEngineServices services) => new PostgresBackfillJob(services, recipeFolder, components, options);
    }
}

/// <summary>
/// Reads a table's rows by time range (in key order, a page at a time) and sends them through a pipeline's own steps
/// and sinks, exactly as if they had been streamed: the same enrichment, the same idempotent writes. Running it over
/// data already streamed changes nothing (counts, rows, ids seen by the API).
/// </summary>
public sealed class PostgresBackfillJob(IEngineServices services, string recipeFolder, ComponentRegistry components, PostgresBackfillOptions options) : IJob
{
    public async Task<JobOutcome> RunAsync(JobRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var from = request.FromTime ?? (request.From is { } f ? new DateTimeOffset(f.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero) : throw new SluiceException("postgres_backfill: give a range: sluice backfill <recipe>/<job> --from ISO --to ISO."));
        var to = request.ToTime ?? (request.To is { } t ? new DateTimeOffset(t.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).AddDays(1) : from.AddDays(1));
        var recipe = new RecipeLoader(components).Load(recipeFolder);
        var pipeline = recipe.Pipelines.FirstOrDefault(p => p.Name == options.Pipeline)
            ?? throw new SluiceException($"postgres_backfill: recipe '{recipe.Name}' has no pipeline '{options.Pipeline}' (pipelines: {string.Join(", ", recipe.Pipelines.Select(p => p.Name))}).");
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
        long rows = 0;
        try
        {
            await using var connection = new NpgsqlConnection(options.Connection.ConnectionString("sluice-backfill"));
            await connection.OpenAsync(ct).ConfigureAwait(false);
            var columns = await PgSnapshotReader.ColumnsAsync(connection, null, options.Schema, options.Table, ct).ConfigureAwait(false);
            if (columns.Count == 0) { throw new SluiceException($"postgres_backfill: table {options.Schema}.{options.Table} not found in database '{options.Connection.Database}'."); }
            foreach (var name in new[] { options.Time, options.Key }.Where(n => columns.All(c => c.Name != n)))
            {
                throw new SluiceException($"postgres_backfill: column '{name}' is not in {options.Schema}.{options.Table}.");
            }

            var shape = new PgTableShape(cdc, columns, options.BatchRows);
            var keyIndex = columns.FindIndex(c => c.Name == options.Key);
            // Qualified, because the text casts keep the column names and ORDER BY would otherwise sort the text.
            var select = string.Join(", ", columns.Select(c => "src." + PgSlotAdmin.Quote(c.Name) + "::text"));
            var table = $"{PgSlotAdmin.Quote(options.Schema)}.{PgSlotAdmin.Quote(options.Table)}";
            long? after = null;
            var batches = 0;
            // A real total for the progress bar (and its time remaining), only when someone watches: it is one more scan of the range.
            var total = request.Progress is null ? 0 : await CountAsync(connection, table, options.Time, from, to, ct).ConfigureAwait(false);
            request.Progress?.Report(new JobProgress(0, total, "rows"));
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
                var batch = new RecordBatch(shape.Builder.Flush(), 0);
                foreach (var step in steps) { batch = await step.ApplyAsync(batch, ct).ConfigureAwait(false); }
                foreach (var sink in chosen) { await sink.WriteAsync(batch, $"backfill:{recipe.Name}", ct).ConfigureAwait(false); }
                rows += read;
                batches++;
                request.Progress?.Report(new JobProgress(rows, Math.Max(total, rows), $"rows, up to {options.Key} {after}"));
                if (read < options.BatchRows) { break; }
            }

            return new JobOutcome(rows, rows, $"{rows} rows of {options.Schema}.{options.Table} from {from:yyyy-MM-dd'T'HH:mm:ss'Z'} to {to:yyyy-MM-dd'T'HH:mm:ss'Z'} sent through {string.Join(", ", chosen.Select(s => s.Name))} in {batches} batches");
        }
        finally
        {
            foreach (var sink in sinks) { await sink.DisposeAsync().ConfigureAwait(false); }
        }
    }

    private static async Task<long> CountAsync(NpgsqlConnection connection, string table, string time, DateTimeOffset from, DateTimeOffset to, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"SELECT count(*) FROM {table} WHERE {PgSlotAdmin.Quote(time)} >= $1 AND {PgSlotAdmin.Quote(time)} < $2", connection);
        cmd.Parameters.AddWithValue(from.UtcDateTime);
        cmd.Parameters.AddWithValue(to.UtcDateTime);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }
}
