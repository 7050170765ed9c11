using Sluice.Core.Config;
using Sluice.Core.Schema;

namespace Sluice.Core.Pipeline;

/// <summary>
/// Follows a pipeline's batch tables and columns at load, from what its source declares through each step to each
/// sink, and reports a step or sink that names a table or column not there at that point, under the option that names
/// it (file:line: pipelines.p.steps[1].where). A step that does not declare what it does (<see cref="IShapesBatches"/>)
/// ends what can be known; a source whose columns only its server knows (<see cref="IConnectedBatchTables"/>) is
/// checked again with them by <c>validate --connect</c>. Loaded for a cluster (<see cref="Sequenced"/>), a files or pull
/// source with a sink that skips replays declares the <c>_offset</c> column its rows carry there too.
/// </summary>
public sealed class PipelineShapeCheck(string sourceType, object source, ConfigMap pipeline, IReadOnlyList<(object Factory, string Type, ConfigMap Map)> steps, IReadOnlyList<(object Factory, string Type, ConfigMap Map)> sinks)
{
    /// <summary>
    /// The source's rows carry their sequences in its log as <c>_offset</c> (<see cref="ILogSequencedSourceFactory"/>
    /// with a sink that skips replays, in cluster mode), so its tables have that column besides those it declares.
    /// </summary>
    public bool Sequenced { get; init; }

    /// <summary>The shape the source declares at load.</summary>
    public BatchShape SourceShape => source switch
    {
        IKnownBatchTables known when Sequenced => BatchShape.Of(known.BatchTables.Select(WithOffset).ToList()),
        IKnownBatchTables known => BatchShape.Of(known.BatchTables),
        IConnectedBatchTables => BatchShape.NotKnown($"source '{sourceType}' learns its tables' columns from its server, so only `sluice validate --connect` checks the columns steps and sinks name"),
        _ => BatchShape.NotKnown($"source '{sourceType}' does not declare its tables at load"),
    };

    /// <summary>Runs the check from the source's declared shape into <paramref name="errors"/>; why not everything could be checked (null when it could).</summary>
    public string? Run(ConfigErrors errors) => Run(SourceShape, errors);

    /// <summary>Runs the check from <paramref name="shape"/> (the source's tables as its server describes them).</summary>
    public string? Run(BatchShape shape, ConfigErrors errors)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(errors);
        for (var i = 0; i < steps.Count; i++)
        {
            var (factory, type, map) = steps[i];
            var problems = new ShapeProblems($"steps[{i}] ({type})");
            shape = factory is IShapesBatches shaped
                ? shaped.Shape(shape, problems)
                : BatchShape.NotKnown(shape.Unknown ?? $"step {problems.Place} does not declare what it does to tables and columns, so nothing after it is checked");
            Report(map, problems, errors);
        }

        for (var i = 0; i < sinks.Count; i++)
        {
            var (factory, type, map) = sinks[i];
            var problems = new ShapeProblems($"sinks[{i}] ({type})");
            if (factory is IChecksBatchShape checks) { checks.Check(shape, problems); }
            Report(map, problems, errors);
            if (factory is IChecksBatchTables tables)
            {
                // A whole-table check (a key, a column to partition by) needs every column and its type.
                foreach (var problem in shape.Tables.Select(t => t.Schema).OfType<TableSchema>().Select(tables.Problem).OfType<string>())
                {
                    pipeline.ErrorAt(errors, "sinks", problem);
                }
            }
        }

        return shape.Unknown;
    }

    /// <summary>A declared table with the <c>_offset</c> column a sequenced source adds last (as FilesSource and PullStreamSource do).</summary>
    private static TableSchema WithOffset(TableSchema table) => table.IndexOf(SequencedColumn) >= 0
        ? table
        : new TableSchema(table.Table, [.. table.Fields, new FieldSpec(SequencedColumn, FieldType.Integer, false)]) { Key = table.Key };

    /// <summary>The column a sequenced source's rows carry their sequence in (the HTTP source's <c>StreamShape.OffsetColumn</c>).</summary>
    public const string SequencedColumn = "_offset";

    private static void Report(ConfigMap map, ShapeProblems problems, ConfigErrors errors)
    {
        foreach (var (key, message) in problems.All) { map.ErrorAt(errors, key, message); }
    }
}
