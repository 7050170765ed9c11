using Sluice.Core.Config;
using Sluice.Core.Recipes;

namespace Sluice.Transforms.Flatten;

/// <summary>What a <c>flatten</c> step does with a JSON array.</summary>
public enum FlattenArrays
{
    /// <summary>Each element becomes a row of a child table <c>&lt;table&gt;&lt;sep&gt;&lt;path&gt;</c> (as HTTP ingest's child arrays).</summary>
    ChildTables,

    /// <summary>The array stays one text column holding its JSON.</summary>
    Json,
}

/// <summary>
/// Options of the <c>flatten</c> step: <c>column</c> (the text column holding a JSON object per row), <c>separator</c>
/// (between the names of nested objects, default <c>_</c>), <c>prefix</c> (before every column it makes, default none),
/// <c>keep_column</c> (keep the JSON column, default false), <c>arrays</c> (<c>child_tables</c> or <c>json</c>),
/// <c>parent_key</c> (columns of the row copied onto each of its child rows beside <c>_offset</c>/<c>_seq</c>), <c>tables</c>.
/// </summary>
public sealed class FlattenOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly FlattenOptions Default = OptionDefaults.Of<FlattenOptions>();

    public required TableSelection Tables { get; init; }

    public required string Column { get; init; }

    public string Separator { get; init; } = "_";

    public string Prefix { get; init; } = "";

    public bool KeepColumn { get; init; }

    public FlattenArrays Arrays { get; init; } = FlattenArrays.ChildTables;

    public IReadOnlyList<string> ParentKey { get; init; } = [];

    public required string LetterSource { get; init; }

    public static FlattenOptions Parse(ConfigMap map, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        var separator = map.String("separator", Default.Separator, doc: "Between the names of nested objects in a column's name.") ?? Default.Separator;
        if (separator.Length == 0) { map.Error("separator", "flatten: must not be empty (names of nested objects would run together)"); }
        return new FlattenOptions
        {
            Tables = TableSelection.Parse(map),
            Column = map.RequiredString("column", doc: "The text column holding a JSON object per row."),
            Separator = separator,
            Prefix = map.String("prefix", Default.Prefix, doc: "Put before every column the step makes.") ?? Default.Prefix,
            KeepColumn = map.Bool("keep_column", Default.KeepColumn, doc: "Keep the JSON column beside the columns made from it."),
            Arrays = map.Enum("arrays", Default.Arrays, doc: "A JSON array: `child_tables` (each element a row of a child table `<table><separator><path>`) or `json` (one text column holding its JSON)."),
            ParentKey = map.StringList("parent_key", doc: "Columns of the row copied onto each of its child rows, beside `_offset`/`_seq`."),
            LetterSource = StepLetters.SourceOf(recipe, map, "flatten"),
        };
    }
}
