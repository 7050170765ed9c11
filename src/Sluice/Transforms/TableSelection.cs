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

    public bool Takes(ColumnBatch table)
    {
        ArgumentNullException.ThrowIfNull(table);
        return Tables.Count == 0 || Tables.Contains(table.Schema.Table, StringComparer.Ordinal);
    }
}
