using System.Text.Json;
using DuckDB.NET.Data;

namespace Sluice.Transforms.Sql;

/// <summary>
/// Checks at load that a step's expression is one DuckDB SQL expression (what may stand in <c>SELECT &lt;expr&gt;</c>),
/// by DuckDB's own parser (<c>json_serialize_sql</c>): no second parser to drift from the one that runs it. Columns are
/// not bound here (a stream's columns are known only when its batches arrive); an unknown column is a run-time failure
/// of every row, dead-lettered with DuckDB's message.
/// </summary>
public static class SqlExpression
{
    private static readonly Lock Gate = new();
    private static DuckDBConnection? _parser;

    /// <summary>What is wrong with <paramref name="expression"/>, or null when it parses as one expression.</summary>
    public static string? Problem(string expression)
    {
        ArgumentNullException.ThrowIfNull(expression);
        if (expression.Trim().Length == 0) { return "empty expression"; }
        string json;
        lock (Gate)
        {
            _parser ??= Open();
            using var command = _parser.CreateCommand();
            command.CommandText = "SELECT json_serialize_sql($q::VARCHAR)";
            command.Parameters.Add(new DuckDBParameter("q", "SELECT " + expression));
            json = command.ExecuteScalar() as string ?? "";
        }

        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        if (root.GetProperty("error").GetBoolean())
        {
            return $"not a SQL expression: {(root.TryGetProperty("error_message", out var m) ? m.GetString() : "syntax error")}";
        }

        var statements = root.GetProperty("statements");
        if (statements.GetArrayLength() != 1) { return "not one SQL expression (a ';' ends it)"; }
        var node = statements[0].GetProperty("node");
        if (node.GetProperty("select_list").GetArrayLength() != 1) { return "not one SQL expression (a top-level ',' makes two)"; }
        if (node.TryGetProperty("from_table", out var from) && from.TryGetProperty("type", out var type) && type.GetString() != "EMPTY")
        {
            return "not one SQL expression (it has a FROM clause; write only what stands after SELECT)";
        }

        return node.TryGetProperty("where_clause", out var where) && where.ValueKind != JsonValueKind.Null
            ? "not one SQL expression (it has a WHERE clause)"
            : null;
    }

    /// <summary>
    /// The columns <paramref name="expression"/> reads, each as DuckDB names it (<c>a</c>, or <c>payload.city</c> as
    /// <c>[payload, city]</c>: a struct's field); null when that cannot be told without binding (a subquery), or the
    /// expression does not parse. A lambda's parameters are not columns.
    /// </summary>
    public static IReadOnlyList<string[]>? Columns(string expression)
    {
        ArgumentNullException.ThrowIfNull(expression);
        if (Problem(expression) is not null) { return null; }
        string json;
        lock (Gate)
        {
            using var command = _parser!.CreateCommand();
            command.CommandText = "SELECT json_serialize_sql($q::VARCHAR)";
            command.Parameters.Add(new DuckDBParameter("q", "SELECT " + expression));
            json = command.ExecuteScalar() as string ?? "";
        }

        using var doc = JsonDocument.Parse(json);
        var found = new List<string[]>();
        var parameters = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        return Walk(doc.RootElement.GetProperty("statements")[0].GetProperty("node").GetProperty("select_list"), found, parameters)
            ? found.Where(c => !parameters.Contains(c[0])).ToList()
            : null;
    }

    /// <summary>Collects column references below <paramref name="node"/>; false when a subquery makes that unknowable.</summary>
    private static bool Walk(JsonElement node, List<string[]> found, HashSet<string> parameters)
    {
        if (node.ValueKind == JsonValueKind.Array) { return node.EnumerateArray().All(e => Walk(e, found, parameters)); }
        if (node.ValueKind != JsonValueKind.Object) { return true; }
        var kind = node.TryGetProperty("class", out var c) ? c.GetString() : null;
        if (kind == "SUBQUERY") { return false; }
        if (kind == "COLUMN_REF" && node.TryGetProperty("column_names", out var names))
        {
            found.Add(names.EnumerateArray().Select(n => n.GetString() ?? "").ToArray());
            return true;
        }

        if (kind == "LAMBDA" && node.TryGetProperty("lhs", out var lhs))
        {
            var inner = new List<string[]>();
            Walk(lhs, inner, parameters);
            foreach (var p in inner) { parameters.Add(p[0]); }
        }

        return node.EnumerateObject().Where(p => p.Name != "lhs" || kind != "LAMBDA").All(p => Walk(p.Value, found, parameters));
    }

    /// <summary>A name as a DuckDB identifier.</summary>
    public static string Quote(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static DuckDBConnection Open()
    {
        var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        return connection;
    }
}
