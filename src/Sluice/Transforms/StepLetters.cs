using Microsoft.Extensions.Logging;
using Sluice.Core.Config;
using Sluice.Core.DeadLetters;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

namespace Sluice.Transforms;

/// <summary>
/// Where a generic step's bad rows go: one dead letter per row, source <c>step:&lt;recipe&gt;/&lt;pipeline&gt;/steps[i]:&lt;type&gt;</c>,
/// the row as JSON, the reason, and a dedup key made of the row's place in the stream (<c>_offset</c>, <c>_seq</c>, else
/// the batch position and row), so a batch read again after a crash does not list the same rejection twice. The good
/// rows of the batch go on.
/// </summary>
public sealed class StepLetters
{
    private readonly DeadLetterStore _store;
    private readonly Core.Metadata.MetadataStore _metadata;
    private readonly ILogger _log;

    internal StepLetters(DeadLetterStore store, Core.Metadata.MetadataStore metadata, ILogger log, string source)
    {
        _store = store;
        _metadata = metadata;
        _log = log;
        Source = source;
    }

    public string Source { get; }

    /// <summary>The step's dead-letter source, from its place in the recipe (the step entry's key path, <c>pipelines.&lt;name&gt;.steps[i]</c>).</summary>
    public static string SourceOf(RecipeContext recipe, ConfigMap step, string type)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(step);
        var path = step.KeyPath.StartsWith("pipelines.", StringComparison.Ordinal) ? step.KeyPath["pipelines.".Length..] : step.KeyPath;
        var dot = path.LastIndexOf(".steps[", StringComparison.Ordinal);
        return dot < 0 ? $"step:{recipe.Name}/{path}:{type}" : $"step:{recipe.Name}/{path[..dot]}/{path[(dot + 1)..]}:{type}";
    }

    public static StepLetters For(IEngineServices services, string source)
    {
        ArgumentNullException.ThrowIfNull(services);
        return new StepLetters(services.DeadLetters, services.Metadata, services.Logging.CreateLogger("Sluice.Steps"), source);
    }

    /// <summary>Dead-letters rows of <paramref name="table"/> with their reasons (in a batch ending at <paramref name="position"/>).</summary>
    public void Add(ColumnBatch table, long position, IReadOnlyList<(int Row, string Reason)> rows)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0) { return; }
        var places = new RowPlace(table, position);
        // Connect(), not Open(): dead letters live in the cluster's shared store too (a worker's step rejects rows as well).
        using var connection = _metadata.Connect();
        using var tx = connection.BeginTransaction();
        foreach (var (row, reason) in rows)
        {
            var place = places.Of(row);
            var described = places.Kind is { } kind ? $"table {table.Schema.Table}, {kind} {place}" : $"table {table.Schema.Table}, row {row + 1} of the batch ending at {position}";
            var payload = System.Text.Encoding.UTF8.GetString(RowJson.ToUtf8(table, row));
            _store.Add(connection, tx, Source, described, reason, payload, $"{Source}:{table.Schema.Table}:{place}");
        }

        tx.Commit();
        StepLog.Lettered(_log, Source, rows.Count, table.Schema.Table, rows[0].Reason);
    }
}

internal static partial class StepLog
{
    [LoggerMessage(38001, LogLevel.Warning, "{Source}: {Count} rows of {Table} dead-lettered (first reason: {Reason}); the other rows go on")]
    public static partial void Lettered(ILogger logger, string source, int count, string table, string reason);
}
