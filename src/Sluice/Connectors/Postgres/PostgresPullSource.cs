using System.Runtime.CompilerServices;
using System.Text;
using Npgsql;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Connectors.Pull;

namespace Sluice.Connectors.Postgres;

/// <summary>The <c>postgres_pull</c> source type: incremental extraction from a PostgreSQL table by its modification time.</summary>
public sealed class PostgresPullSourceType : ISourceType
{
    public string Name => "postgres_pull";

    public ISourceFactory Parse(ConfigMap options, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(recipe);
        var pipeline = PipelineName(options);
        return new PostgresPullSourceFactory(recipe.Name, pipeline, PostgresPullOptions.Parse(options, recipe));
    }

    /// <summary>The pipeline a <c>source:</c> block belongs to (<c>pipelines.&lt;name&gt;.source</c>).</summary>
    internal static string PipelineName(ConfigMap source) => SourcePipeline.NameOf(source, "pull");
}

/// <summary>With <c>mapping:</c> the source lands attorney events itself (<see cref="Create"/>); without, it hands the table's rows to the pipeline's sinks (<see cref="CreateStream"/>).</summary>
public sealed class PostgresPullSourceFactory(string recipe, string pipeline, PostgresPullOptions? options) : Core.Pipeline.IStreamSourceFactory, IStandaloneSource, Core.Pipeline.IKnownBatchTables, IConnectionCheck, IPullSourceFactory, Core.Pipeline.ILogSequencedSourceFactory
{
    public PullMapping? Mapping => options?.Pull;

    public IReadOnlyList<Core.Schema.TableSchema> BatchTables => options is null ? [] : [PulledRows.Schema(options.Stream.Table, options.Stream.Columns)];

    public PostgresPullOptions Options => options ?? throw new InvalidOperationException("the recipe did not validate");

    public IRunnableSource Create(IEngineServices services) =>
        Options.Pull!.Create(services, recipe, "postgres_pull", pipeline, new PostgresTableExtractor(Options));

    public Core.Pipeline.IStreamSource CreateStream(IEngineServices services) =>
        new PullStreamSource(services, recipe, "postgres_pull", pipeline, Options.Stream, new PostgresTableExtractor(Options));

    public string? SinksProblem(bool hasSinks) => PullSinks.Problem("postgres_pull", options is null || options.Pull is not null, hasSinks);

    /// <summary>The table exists with its key, stamp and <c>columns:</c> (matched without regard to case, as the pull reads them).</summary>
    public async Task<IReadOnlyList<string>> CheckConnectionAsync(CancellationToken ct)
    {
        var problems = new List<string>();
        var settings = PostgresConnectionOptions.FromEnvironment().WithDatabase(Options.Database).Builder();
        await using var connection = await PgPreflight.OpenAsync(settings, "database", problems, ct).ConfigureAwait(false);
        if (connection is null) { return problems; }
        var dot = Options.Table.IndexOf('.', StringComparison.Ordinal);
        var needed = new[] { ("key_column", Options.KeyColumn), ("updated_column", Options.UpdatedColumn) }
            .Concat(Options.Pull is null ? Options.Stream.Columns.Select(c => ("columns", c.Name)) : []);
        await PgPreflight.TableAsync(connection, "table", dot < 0 ? "public" : Options.Table[..dot], Options.Table[(dot + 1)..], needed, problems, ct, ignoreCase: true).ConfigureAwait(false);
        return problems;
    }
}

/// <summary>
/// Reads a table in pages ordered by (modification time, key), each row as its JSON (<c>row_to_json</c>), from an
/// instant on. Pages are fetched by keyset (after the last row's time and key), so a page never repeats or skips rows
/// however the table changes meanwhile.
/// </summary>
public sealed class PostgresTableExtractor : IIncrementalExtractor
{
    private readonly PostgresPullOptions _options;
    private readonly NpgsqlDataSource _source;

    public PostgresTableExtractor(PostgresPullOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        var settings = PostgresConnectionOptions.FromEnvironment().WithDatabase(options.Database).Builder();
        settings.ApplicationName = "sluice postgres_pull";
        settings.Timezone = "UTC";
        Describe = $"PostgreSQL table {options.Table} on {PostgresConnectionOptions.Describe(settings)}";
        _source = NpgsqlDataSource.Create(settings);
    }

    public string Describe { get; }

    public async IAsyncEnumerable<IReadOnlyList<PulledRecord>> ReadSinceAsync(DateTime? since, [EnumeratorCancellation] CancellationToken ct)
    {
        var key = $"\"{_options.KeyColumn}\"";
        var updated = $"\"{_options.UpdatedColumn}\"";
        DateTime? lastStamp = null;
        string? lastKey = null;
        var connection = await OpenAsync(ct).ConfigureAwait(false);
        await using var _ = connection.ConfigureAwait(false);
        while (true)
        {
            var filter = new List<string>();
            await using var cmd = new NpgsqlCommand { Connection = connection };
            if (since is { } s)
            {
                filter.Add($"t.{updated} >= @since");
                cmd.Parameters.AddWithValue("since", DateTime.SpecifyKind(s, DateTimeKind.Utc));
            }

            if (lastStamp is { } ls)
            {
                filter.Add($"(t.{updated}, t.{key}::text) > (@last, @lastkey)");
                cmd.Parameters.AddWithValue("last", ls);
                cmd.Parameters.AddWithValue("lastkey", lastKey!);
            }

            cmd.CommandText =
                $"SELECT row_to_json(t)::text, t.{key}::text, t.{updated}::timestamptz FROM {_options.QuotedTable} t " +
                (filter.Count > 0 ? "WHERE " + string.Join(" AND ", filter) + " " : "") +
                $"ORDER BY t.{updated}, t.{key}::text LIMIT {_options.PageSize}";
            var page = new List<PulledRecord>(Math.Min(_options.PageSize, 4096));
            try
            {
                await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    if (reader.IsDBNull(1) || reader.IsDBNull(2))
                    {
                        throw new SluiceException($"{Describe}: a row has no {_options.KeyColumn} or no {_options.UpdatedColumn}; both must be set for incremental reading.");
                    }

                    page.Add(new PulledRecord(reader.GetString(1), reader.GetFieldValue<DateTime>(2), Encoding.UTF8.GetBytes(reader.GetString(0))));
                }
            }
            catch (PostgresException e)
            {
                throw PgFailures.Fatal(e, Describe) ?? new SluiceException($"{Describe}: {e.MessageText}", e);
            }

            if (page.Count == 0)
            {
                yield break;
            }

            yield return page;
            if (page.Count < _options.PageSize)
            {
                yield break;
            }

            lastStamp = page[^1].Stamp;
            lastKey = page[^1].Id;
        }
    }

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken ct)
    {
        try
        {
            return await _source.OpenConnectionAsync(ct).ConfigureAwait(false);
        }
        catch (NpgsqlException e)
        {
            // A refused login or a missing database does not go away at the next poll; an unreachable server may.
            throw PgFailures.Fatal(e, Describe) ?? new SluiceException($"cannot reach {Describe}: {e.Message}", e);
        }
    }

    public ValueTask DisposeAsync() => _source.DisposeAsync();
}
