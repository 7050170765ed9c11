using System.Globalization;
using System.Text.Json;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

namespace Sluice.Transforms.Flatten;

/// <summary>The <c>flatten</c> step type.</summary>
public sealed class FlattenStepType : IStepType
{
    public string Name => "flatten";

    public IStepFactory Parse(ConfigMap options, RecipeContext recipe) => new Factory(FlattenOptions.Parse(options, recipe));

    private sealed class Factory(FlattenOptions options) : IStepFactory, IShapesBatches
    {
        /// <summary>
        /// A table with the column gets columns known only from the JSON (and, with child tables, tables too); a table
        /// without it passes as it is, so the column is a mistake only when no table has it.
        /// </summary>
        public BatchShape Shape(BatchShape input, ShapeProblems problems)
        {
            options.Tables.Check(input, problems, "flatten");
            var use = new ColumnUse(problems, "flatten");
            var shape = input.Edit(options.Tables.Tables, table =>
            {
                if (!use.Use(table, "column", options.Column)) { return table; }
                foreach (var key in options.ParentKey) { use.Need(table, "parent_key", key); }
                table = table with { Open = true };
                return options.KeepColumn ? table : table.Without(options.Column, $"flattened into columns by {problems.Place}");
            });
            use.Done();
            return options.Arrays == FlattenArrays.ChildTables ? shape.WithOthers($"{problems.Place} makes columns and child tables from JSON, known only from the data") : shape;
        }

        public IBatchStep Create(IEngineServices services) => new FlattenStep(options, StepLetters.For(services, options.LetterSource));
    }
}

/// <summary>
/// Turns a JSON text column into columns: <c>{"a": {"b": 1}}</c> becomes <c>a_b</c>. A column's type is what its values
/// are across the batch (integers, with a fraction anywhere: double; text; booleans); values of mixed kinds make it text
/// (each value's JSON), and a column of only nulls is text. The types are the batch's, so a column can change type
/// between batches: a <c>map</c> step with <c>cast</c> after this one fixes them. Arrays become child tables (one row per
/// element: the parent's <c>_offset</c>/<c>_seq</c> and <c>parent_key</c> columns, <c>_index</c>, then the element's
/// fields flattened, or <c>value</c> for a scalar) or stay JSON text. An array inside an array element stays JSON text.
/// A row whose value is not a JSON object is dead-lettered with the reason; NULL passes with NULL columns.
/// </summary>
public sealed class FlattenStep(FlattenOptions options, StepLetters letters) : IBatchStep
{
    private const int MaxDepth = 32;

    public ValueTask<RecordBatch> ApplyAsync(RecordBatch batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var output = new List<ColumnBatch>();
        foreach (var table in batch.Tables)
        {
            if (options.Tables.Takes(table) && table.Schema.IndexOf(options.Column) >= 0) { output.AddRange(Apply(table, batch.Position)); }
            else { output.Add(table); }
        }

        return ValueTask.FromResult(batch with { Tables = output });
    }

    /// <summary>The flattened table, then its child tables.</summary>
    public IReadOnlyList<ColumnBatch> Apply(ColumnBatch table, long position)
    {
        ArgumentNullException.ThrowIfNull(table);
        var at = table.Schema.IndexOf(options.Column);
        var json = table.Strings(at);
        var rows = new List<Dictionary<string, JsonValue>>(table.Count);
        var keep = new List<int>(table.Count);
        var failed = new List<(int, string)>();
        var children = new Dictionary<string, List<(int Parent, int Index, Dictionary<string, JsonValue> Values)>>(StringComparer.Ordinal);
        for (var row = 0; row < table.Count; row++)
        {
            var values = new Dictionary<string, JsonValue>(StringComparer.Ordinal);
            if (json[row] is { } text)
            {
                try
                {
                    using var doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = MaxDepth });
                    if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    {
                        failed.Add((row, $"flatten: column {options.Column} holds a JSON {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}, not an object"));
                        continue;
                    }

                    var pending = new List<(string, JsonElement)>();
                    Walk(doc.RootElement, options.Prefix, values, pending);
                    foreach (var (path, array) in pending)
                    {
                        var list = children.TryGetValue(path, out var l) ? l : children[path] = [];
                        var index = 0;
                        foreach (var element in array.EnumerateArray())
                        {
                            var child = new Dictionary<string, JsonValue>(StringComparer.Ordinal);
                            if (element.ValueKind == JsonValueKind.Object) { Walk(element, "", child, null); }
                            else { child["value"] = JsonValue.Of(element); }
                            list.Add((keep.Count, index++, child));
                        }
                    }
                }
                catch (JsonException e)
                {
                    failed.Add((row, $"flatten: column {options.Column} is not JSON: {e.Message}"));
                    continue;
                }
            }

            rows.Add(values);
            keep.Add(row);
        }

        letters.Add(table, position, failed);
        var kept = failed.Count == 0 ? table : table.Gather(keep.ToArray());
        var edit = new TableEdit(kept);
        if (!options.KeepColumn) { edit.Remove(edit.IndexOf(options.Column)); }
        foreach (var (name, type, values) in Columns(rows)) { edit.Set(name, type, values); }
        var output = new List<ColumnBatch> { edit.Build() };
        foreach (var (path, list) in children) { output.Add(Child(kept, table.Schema.Table + options.Separator + path, list)); }
        return output;
    }

    private ColumnBatch Child(ColumnBatch parent, string name, List<(int Parent, int Index, Dictionary<string, JsonValue> Values)> rows)
    {
        var links = options.ParentKey.Concat(["_offset", ChangeEnvelope.Seq]).Distinct(StringComparer.Ordinal).Select(parent.Schema.IndexOf).Where(i => i >= 0).ToArray();
        var parents = rows.Select(r => r.Parent).ToArray();
        var fields = new List<FieldSpec>();
        var columns = new List<Array>();
        var order = new List<(FieldSpec, Array)>();
        foreach (var (column, type, values) in Columns(rows.Select(r => r.Values).ToList())) { order.Add((new FieldSpec(column, type, false), values)); }
        foreach (var link in links)
        {
            fields.Add(parent.Schema.Fields[link] with { Required = false });
            columns.Add(ColumnArrays.Gather(parent.Columns[link], parents));
        }

        foreach (var (spec, values) in order)
        {
            fields.Add(spec);
            columns.Add(values);
        }

        fields.Add(new FieldSpec("_index", FieldType.Integer, true));
        columns.Add(rows.Select(r => (long?)r.Index).ToArray());
        return new ColumnBatch(new TableSchema(name, fields), columns.ToArray(), rows.Count);
    }

    private void Walk(JsonElement obj, string prefix, Dictionary<string, JsonValue> values, List<(string, JsonElement)>? arrays)
    {
        foreach (var property in obj.EnumerateObject())
        {
            var name = prefix.Length == 0 ? property.Name : prefix + options.Separator + property.Name;
            switch (property.Value.ValueKind)
            {
                case JsonValueKind.Object:
                    Walk(property.Value, name, values, arrays);
                    break;
                case JsonValueKind.Array when arrays is not null && options.Arrays == FlattenArrays.ChildTables:
                    arrays.Add((name, property.Value));
                    break;
                default:
                    values[name] = JsonValue.Of(property.Value);
                    break;
            }
        }
    }

    /// <summary>The columns of a set of flattened rows, in the order their names first appear, typed by their values.</summary>
    private static IEnumerable<(string Name, FieldType Type, Array Values)> Columns(List<Dictionary<string, JsonValue>> rows)
    {
        var names = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            foreach (var name in row.Keys) { if (seen.Add(name)) { names.Add(name); } }
        }

        foreach (var name in names)
        {
            FieldType? type = null;
            var mixed = false;
            foreach (var row in rows)
            {
                if (!row.TryGetValue(name, out var v) || v.Value is null) { continue; }
                var t = v.Type;
                if (type is null) { type = t; }
                else if (type != t)
                {
                    if ((type, t) is (FieldType.Integer, FieldType.Double) or (FieldType.Double, FieldType.Integer)) { type = FieldType.Double; }
                    else { mixed = true; }
                }
            }

            var column = mixed || type is null ? FieldType.String : type.Value;
            yield return (name, column, column switch
            {
                FieldType.Integer => rows.Select(r => r.TryGetValue(name, out var v) ? (long?)v.Value : null).ToArray(),
                FieldType.Double => rows.Select(r => r.TryGetValue(name, out var v) && v.Value is { } x ? (double?)Convert.ToDouble(x, CultureInfo.InvariantCulture) : null).ToArray(),
                FieldType.Boolean => rows.Select(r => r.TryGetValue(name, out var v) ? (bool?)v.Value : null).ToArray(),
                _ => rows.Select(r => r.TryGetValue(name, out var v) && v.Value is not null ? (mixed ? v.Json : v.Value as string ?? v.Json) : null).ToArray(),
            });
        }
    }

    /// <summary>A JSON value read: its .NET value (long, double, bool, string; null), its column type and its JSON text.</summary>
    private readonly record struct JsonValue(object? Value, FieldType Type, string Json)
    {
        public static JsonValue Of(JsonElement e) => e.ValueKind switch
        {
            JsonValueKind.Number when e.TryGetInt64(out var l) => new(l, FieldType.Integer, e.GetRawText()),
            JsonValueKind.Number => new(e.GetDouble(), FieldType.Double, e.GetRawText()),
            JsonValueKind.String => new(e.GetString(), FieldType.String, e.GetRawText()),
            JsonValueKind.True or JsonValueKind.False => new(e.GetBoolean(), FieldType.Boolean, e.GetRawText()),
            JsonValueKind.Null => new(null, FieldType.String, "null"),
            _ => new(e.GetRawText(), FieldType.String, e.GetRawText()),
        };
    }
}
