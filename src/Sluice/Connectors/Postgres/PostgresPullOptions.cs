using System.Text.RegularExpressions;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Connectors.Pull;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Options of the <c>postgres_pull</c> source: any PostgreSQL table with a modification-time column, read
/// incrementally (each row as <c>row_to_json</c>, so nested <c>jsonb</c> columns map like nested JSON). The server comes
/// from the <c>PG*</c> variables. Validated at load.
/// </summary>
public sealed partial class PostgresPullOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly PostgresPullOptions Default = OptionDefaults.Of<PostgresPullOptions>();

    /// <summary>The table, <c>name</c> or <c>schema.name</c> (required).</summary>
    public string Table { get; init; } = "";

    /// <summary>The column identifying a row; ties on the modification time are ordered by it.</summary>
    public string KeyColumn { get; init; } = "id";

    /// <summary>The modification-time column, <c>timestamptz</c> or <c>timestamp</c> read as UTC.</summary>
    public string UpdatedColumn { get; init; } = "updated_at";

    /// <summary>The database, when not <c>PGDATABASE</c> (default: <c>PGDATABASE</c>).</summary>
    public string? Database { get; init; }

    /// <summary>Rows per page, each page one commit.</summary>
    public int PageSize { get; init; } = 5_000;

    /// <summary>With <c>mapping:</c>, the registered <see cref="IPullMapper"/> maps and lands the rows itself (no sinks).</summary>
    public PullMapping? Pull { get; init; }

    /// <summary>Without <c>mapping:</c>, how the rows are handed to the pipeline's sinks.</summary>
    public required PullStreamOptions Stream { get; init; }

    public static PostgresPullOptions? Parse(ConfigMap map, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        // A description shows the mapped pull's keys too (mapping, store), which a recipe gives together.
        var mapped = map.Has("mapping") || map.Describing;
        var pull = mapped ? PullMapping.Parse(map, recipe) : null;
        var table = map.RequiredString("table", doc: "The table, `name` or `schema.name` (required).");
        var options = new PostgresPullOptions
        {
            Table = table,
            KeyColumn = map.String("key_column", Default.KeyColumn, doc: "The column identifying a row; ties on the modification time are ordered by it.") ?? Default.KeyColumn,
            UpdatedColumn = map.String("updated_column", Default.UpdatedColumn, doc: "The modification-time column, `timestamptz` or `timestamp` read as UTC.") ?? Default.UpdatedColumn,
            Database = map.String("database", doc: "The database, when not `PGDATABASE`."),
            PageSize = map.Int("page_size", Default.PageSize, 1, 1_000_000, doc: "Rows per page, each page one commit."),
            Pull = pull,
            Stream = PullStreamOptions.Parse(map, table[(table.IndexOf('.', StringComparison.Ordinal) + 1)..]),
        };
        if (table.Length > 0 && !TableName().IsMatch(table)) { map.Error("table", $"'{table}' must be name or schema.name (letters, digits, '_')"); }
        foreach (var (key, value) in new[] { ("key_column", options.KeyColumn), ("updated_column", options.UpdatedColumn) })
        {
            if (!Column().IsMatch(value)) { map.Error(key, $"'{value}' must be a column name (letters, digits, '_')"); }
        }

        return mapped && pull is null ? null : options;
    }

    /// <summary>The table as SQL, each part quoted.</summary>
    public string QuotedTable => string.Join('.', Table.Split('.').Select(p => $"\"{p}\""));

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)?$")]
    private static partial Regex TableName();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex Column();
}
