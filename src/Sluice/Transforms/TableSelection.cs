using Sluice.Core.Config;
using Sluice.Core.Schema;

namespace Sluice.Transforms;

/// <summary>The <c>tables:</c> option of a generic step: the batch tables it changes (empty: every table); the others pass through as they are.</summary>
public sealed record TableSelection(IReadOnlyList<string> Tables)
{
    public static TableSelection Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        return new TableSelection(map.StringList("tables", doc: "The batch tables the step changes (default: every table); the others pass through as they are."));
    }

    /// <summary>Each table named that does not reach the step, under <c>tables</c>.</summary>
    public void Check(Core.Pipeline.BatchShape shape, Core.Pipeline.ShapeProblems problems, string step)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(problems);
        foreach (var name in Tables) { problems.Add("tables", step, shape.MissingTable(name)); }
    }

    public bool Takes(ColumnBatch table)
    {
        ArgumentNullException.ThrowIfNull(table);
        return Tables.Count == 0 || Tables.Contains(table.Schema.Table, StringComparer.Ordinal);
    }
}
