using Sluice.Connectors.Postgres;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

namespace Sluice.Transforms.Lookup;

/// <summary>Where a <c>lookup</c> dimension's rows come from.</summary>
public enum LookupLoad
{
    /// <summary>A Postgres table: loaded at start (up to <c>max_rows</c>), a key not held read from it on a miss; its rows in the stream (CDC) keep it current.</summary>
    Postgres,

    /// <summary>Only the dimension's rows in the stream (a CDC table of the same source): nothing is read at start.</summary>
    Stream,
}

/// <summary>What a <c>lookup</c> does with a row whose key has no dimension row.</summary>
public enum LookupMiss
{
    /// <summary>The row goes on with NULL dimension fields.</summary>
    Keep,

    /// <summary>The row goes to the dead letters with the key it missed.</summary>
    DeadLetter,

    /// <summary>The key is read again from Postgres every <c>wait_interval</c> for up to <c>wait_timeout</c>, then dead-lettered.</summary>
    Wait,
}

/// <summary>
/// Options of the <c>lookup</c> step: <c>key</c> (the rows' join column), <c>dimension</c> (<c>table</c>, <c>key</c>,
/// <c>schema</c>, <c>load</c>, <c>connection</c>), <c>fields</c> (the dimension columns copied: a list, typed from
/// Postgres, or a mapping of name to type), <c>prefix</c>, <c>max_rows</c> (the cache bound, default 100,000),
/// <c>on_miss</c> (<c>keep</c>, <c>dead_letter</c>, <c>wait</c>), <c>wait_timeout</c>, <c>wait_interval</c>, <c>tables</c>
/// (default: every table but the dimension's).
/// </summary>
public sealed class LookupOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly LookupOptions Default = OptionDefaults.Of<LookupOptions>();

    public required TableSelection Tables { get; init; }

    public required string Key { get; init; }

    public required string Dimension { get; init; }

    public required string DimensionKey { get; init; }

    public string Schema { get; init; } = "public";

    public LookupLoad Load { get; init; } = LookupLoad.Postgres;

    public PostgresConnectionOptions? Connection { get; init; }

    public required IReadOnlyList<string> Fields { get; init; }

    /// <summary>Declared types by field (a <c>fields:</c> mapping); empty: taken from Postgres.</summary>
    public IReadOnlyDictionary<string, FieldType> Types { get; init; } = new Dictionary<string, FieldType>();

    public string Prefix { get; init; } = "";

    public int MaxRows { get; init; } = 100_000;

    public LookupMiss OnMiss { get; init; } = LookupMiss.Keep;

    public TimeSpan WaitTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public TimeSpan WaitInterval { get; init; } = TimeSpan.FromSeconds(1);

    public required string LetterSource { get; init; }

    /// <summary>
    /// At load: each table joined needs the key (a row without it is dead-lettered) and gets the fields; with
    /// <c>load: stream</c> the dimension's own rows must reach the step with its key and fields.
    /// </summary>
    public Core.Pipeline.BatchShape Shape(Core.Pipeline.BatchShape input, Core.Pipeline.ShapeProblems problems)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(problems);
        Tables.Check(input, problems, "lookup");
        var use = new ColumnUse(problems, "lookup");
        if (Load == LookupLoad.Stream)
        {
            if (input.Table(Dimension) is { } dimension)
            {
                use.Need(dimension, "dimension.key", DimensionKey);
                foreach (var field in Fields) { use.Need(dimension, "fields", field); }
            }
            else { problems.Add("dimension.table", "lookup", $"load: stream keeps the dimension from its own rows in the stream, but {input.MissingTable(Dimension)}"); }
        }

        return input.Edit(Tables.Tables, table =>
        {
            use.Need(table, "key", Key);
            foreach (var field in Fields) { table = table.With(new Core.Pipeline.ShapeColumn(Prefix + field, Types.TryGetValue(field, out var type) ? type : null)); }
            return table;
        }, except: Dimension);
    }

    public static LookupOptions Parse(ConfigMap map, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        var key = map.RequiredString("key", doc: "The rows' column joined with the dimension's key.");
        var dimension = map.Map("dimension", required: true, doc: "The dimension table the rows are joined with.");
        var table = dimension?.RequiredString("table", doc: "The dimension table's name (in the stream, and in Postgres with `load: postgres`).") ?? "";
        var dimensionKey = dimension?.String("key", doc: "The dimension's key column. Default: the same name as `key`.") ?? key;
        var schema = dimension?.String("schema", Default.Schema, doc: "The Postgres schema of the dimension table.") ?? Default.Schema;
        var load = dimension?.Enum("load", Default.Load, doc: "Where the dimension's rows come from: `postgres` (loaded at start up to `max_rows`, a missing key read on a miss, kept current by its rows in the stream) or `stream` (only its rows in the stream, a CDC table of the same source).") ?? Default.Load;
        var connection = load == LookupLoad.Postgres && dimension is not null ? PostgresConnectionOptions.Parse(dimension, "lookup") : null;
        if (load == LookupLoad.Stream && dimension?.Has("connection") == true) { dimension.Error("connection", "lookup: load: stream reads nothing from Postgres; remove connection or set load: postgres"); }
        dimension?.Done();

        var fields = new List<string>();
        var types = new Dictionary<string, FieldType>(StringComparer.Ordinal);
        if (map.IsMapping("fields"))
        {
            foreach (var (name, type, owner) in Map.MapOptions.Pairs(map, "fields", "The dimension columns copied onto each row, with their types."))
            {
                fields.Add(name);
                if (FieldTypes.TryParse(type, out var parsed)) { types[name] = parsed; }
                else { owner.Error(name, $"lookup: unknown type '{type}' (expected string, integer, double, boolean, timestamp or date)"); }
            }
        }
        else { fields.AddRange(map.StringList("fields", doc: "The dimension columns copied onto each row: a list (typed from Postgres), or a mapping of name to type.")); }

        if (fields.Count == 0) { map.Error("fields", "lookup: missing required field: the dimension columns to copy"); }
        if (load == LookupLoad.Stream && types.Count == 0 && fields.Count > 0)
        {
            map.Error("fields", "lookup: with load: stream the fields' types cannot be read from Postgres; write fields as a mapping of name to type ({title: string, length_seconds: integer})");
        }

        var onMiss = map.Enum("on_miss", Default.OnMiss, doc: "A row whose key has no dimension row: `keep` (goes on with NULL fields), `dead_letter`, or `wait` (read again every `wait_interval` for up to `wait_timeout`, then dead-lettered).");
        if (onMiss == LookupMiss.Wait && load == LookupLoad.Stream)
        {
            map.Error("on_miss", "lookup: wait reads the missing key again from Postgres, which load: stream has not; a dimension row later in the same stream is behind the row waiting for it, so waiting cannot help (use keep or dead_letter)");
        }

        return new LookupOptions
        {
            Tables = TableSelection.Parse(map),
            Key = key,
            Dimension = table,
            DimensionKey = dimensionKey,
            Schema = schema,
            Load = load,
            Connection = connection,
            Fields = fields,
            Types = types,
            Prefix = map.String("prefix", Default.Prefix, doc: "Put before the name of every copied column.") ?? Default.Prefix,
            MaxRows = map.Int("max_rows", Default.MaxRows, min: 1, max: 50_000_000, doc: "Dimension rows kept in memory at most (the cache bound)."),
            OnMiss = onMiss,
            WaitTimeout = map.Duration("wait_timeout", Default.WaitTimeout, doc: "`on_miss: wait`: how long a missing key is waited for before the row is dead-lettered."),
            WaitInterval = map.Duration("wait_interval", Default.WaitInterval, doc: "`on_miss: wait`: how often a missing key is read again."),
            LetterSource = StepLetters.SourceOf(recipe, map, "lookup"),
        };
    }
}
