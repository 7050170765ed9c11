using System.Numerics;
using DuckDB.NET.Data;
using Sluice.Core.Schema;

namespace Sluice.Transforms.Sql;

/// <summary>
/// DuckDB SQL over one table of a batch: the columns an expression names are appended into an in-memory table
/// <c>batch</c> (with <c>__row</c>, the row's index), and the expressions run as one vectorised query. A query that
/// fails (a cast of one bad value, a missing column) is cut in halves until the failing rows stand alone, so each bad
/// row gets DuckDB's own message and every good row its value; a batch without bad rows costs one query. The session is
/// private to one step, in memory, single-threaded (steps run one batch at a time) and has no file access (an
/// expression cannot read or write files).
/// </summary>
public sealed class BatchSql : IDisposable
{
    public const string RowColumn = "__row";

    private readonly DuckDBConnection _connection;
    private readonly IReadOnlyList<string> _expressions;

    /// <param name="expressions">The SQL expressions the step evaluates (checked at load by <see cref="SqlExpression.Problem"/>).</param>
    public BatchSql(IReadOnlyList<string> expressions)
    {
        _expressions = expressions;
        _connection = new DuckDBConnection("DataSource=:memory:");
        _connection.Open();
        // Why these: a batch is at most tens of thousands of rows (256 MB is plenty, and bounds a runaway expression);
        // one thread because steps take one batch at a time and the machine's cores belong to the sinks.
        Exec("SET TimeZone = 'UTC'; SET memory_limit = '256MB'; SET threads = 1;");
        Lake.DuckDbMacros.Install(_connection);
        Exec("SET enable_external_access = false; SET lock_configuration = true;");
    }

    /// <summary>Loads <paramref name="table"/>: the columns some expression names (a name matched as a word, case-insensitively, as DuckDB does), and <see cref="RowColumn"/>.</summary>
    public void Load(ColumnBatch table)
    {
        ArgumentNullException.ThrowIfNull(table);
        var used = Enumerable.Range(0, table.Schema.Fields.Count).Where(c => _expressions.Any(e => Names(e, table.Schema.Fields[c].Name))).ToArray();
        var columns = string.Join("", used.Select(c => $", {SqlExpression.Quote(table.Schema.Fields[c].Name)} {SqlType(table.Schema.Fields[c].Type)}"));
        Exec($"CREATE OR REPLACE TABLE batch({RowColumn} INTEGER{columns})");
        using var appender = _connection.CreateAppender("batch");
        var arrays = used.Select(c => table.Columns[c]).ToArray();
        for (var row = 0; row < table.Count; row++)
        {
            var line = appender.CreateRow();
            line.AppendValue(row);
            foreach (var array in arrays)
            {
                switch (array)
                {
                    case string?[] s: line.AppendValue(s[row]); break;
                    case long?[] l: line.AppendValue(l[row]); break;
                    case double?[] d: line.AppendValue(d[row]); break;
                    case bool?[] b: line.AppendValue(b[row]); break;
                    case DateTime?[] t: line.AppendValue(t[row]); break;
                    case DateOnly?[] d: line.AppendValue(d[row]); break;
                    default: line.AppendNullValue(); break;
                }
            }

            line.EndRow();
        }
    }

    /// <summary>
    /// Evaluates the expressions (<paramref name="select"/>, indexes into the step's expressions) for the loaded rows
    /// where <paramref name="where"/> (an index too, or null) is true.
    /// </summary>
    public SqlResult Evaluate(IReadOnlyList<int> select, int? where, int count)
    {
        ArgumentNullException.ThrowIfNull(select);
        var list = string.Concat(select.Select((e, i) => $", ({_expressions[e]}) AS e{i}"));
        var filter = where is { } w ? $" AND ({_expressions[w]})" : "";
        var types = new Type?[select.Count];
        var rows = new List<int>(count);
        var values = select.Select(_ => new List<object?>(count)).ToArray();
        var failed = new List<(int Row, string Reason)>();
        string? bindProblem = null;
        try
        {
            using var describe = _connection.CreateCommand();
            describe.CommandText = $"SELECT {RowColumn}{list} FROM batch WHERE true{filter} LIMIT 0";
            using var reader = describe.ExecuteReader();
            for (var i = 0; i < select.Count; i++) { types[i] = reader.GetFieldType(i + 1); }
        }
        catch (DuckDBException e)
        {
            // Not about one value (a column the batch lacks, a function on the wrong type): every row fails alike.
            bindProblem = Message(e);
        }

        if (bindProblem is not null)
        {
            for (var row = 0; row < count; row++) { failed.Add((row, bindProblem)); }
        }
        else if (count > 0)
        {
            Run(0, count - 1);
        }

        return new SqlResult(rows, values.Select((v, i) => ToColumn(v, types[i] ?? typeof(string))).ToArray(), types.Select(t => TypeOf(t ?? typeof(string))).ToArray(), failed);

        void Run(int from, int to)
        {
            try
            {
                using var command = _connection.CreateCommand();
                command.CommandText = $"SELECT {RowColumn}{list} FROM batch WHERE {RowColumn} BETWEEN {from} AND {to}{filter} ORDER BY {RowColumn}";
                using var reader = command.ExecuteReader();
                var start = rows.Count;
                try
                {
                    while (reader.Read())
                    {
                        rows.Add(reader.GetInt32(0));
                        for (var i = 0; i < select.Count; i++) { values[i].Add(reader.IsDBNull(i + 1) ? null : reader.GetValue(i + 1)); }
                    }
                }
                catch (DuckDBException)
                {
                    // A failure met while streaming the result: the rows read of this range are taken back, and it is cut.
                    rows.RemoveRange(start, rows.Count - start);
                    foreach (var v in values) { v.RemoveRange(start, v.Count - start); }
                    throw;
                }
            }
            catch (DuckDBException e)
            {
                if (from == to)
                {
                    failed.Add((from, Message(e)));
                    return;
                }

                var middle = from + ((to - from) / 2);
                Run(from, middle);
                Run(middle + 1, to);
            }
        }
    }

    /// <summary>DuckDB's message without the query echo (the LINE 1 part names the step's generated SQL, not the recipe).</summary>
    private static string Message(DuckDBException e)
    {
        var text = e.Message;
        var cut = text.IndexOf("\n\nLINE ", StringComparison.Ordinal);
        return (cut >= 0 ? text[..cut] : text).Replace('\n', ' ').Trim();
    }

    private static bool Names(string expression, string column)
    {
        var at = 0;
        while ((at = expression.IndexOf(column, at, StringComparison.OrdinalIgnoreCase)) >= 0)
        {
            var before = at == 0 || !IsWord(expression[at - 1]);
            var end = at + column.Length;
            var after = end == expression.Length || !IsWord(expression[end]);
            if (before && after) { return true; }
            at = end;
        }

        return false;
    }

    private static bool IsWord(char c) => char.IsLetterOrDigit(c) || c == '_';

    /// <summary>How a batch column is seen in SQL: an exact decimal as its text (cast it to compute: <c>amount::DECIMAL(18,2)</c>), timestamps as UTC.</summary>
    private static string SqlType(FieldType type) => type switch
    {
        FieldType.Integer => "BIGINT",
        FieldType.Double => "DOUBLE",
        FieldType.Boolean => "BOOLEAN",
        FieldType.Timestamp => "TIMESTAMP",
        FieldType.Date => "DATE",
        _ => "VARCHAR",
    };

    /// <summary>The column type a result of this .NET type becomes; what has no column type (lists, structs, huge integers) becomes its text.</summary>
    public static FieldType TypeOf(Type type) => type switch
    {
        _ when type == typeof(long) || type == typeof(int) || type == typeof(short) || type == typeof(sbyte) || type == typeof(byte) || type == typeof(ushort) || type == typeof(uint) => FieldType.Integer,
        _ when type == typeof(double) || type == typeof(float) || type == typeof(decimal) => FieldType.Double,
        _ when type == typeof(bool) => FieldType.Boolean,
        _ when type == typeof(DateTime) || type == typeof(DateTimeOffset) => FieldType.Timestamp,
        _ when type == typeof(DateOnly) => FieldType.Date,
        _ => FieldType.String,
    };

    private static Array ToColumn(List<object?> values, Type type)
    {
        var n = values.Count;
        switch (TypeOf(type))
        {
            case FieldType.Integer:
                var l = new long?[n];
                for (var i = 0; i < n; i++) { l[i] = values[i] is null ? null : Convert.ToInt64(values[i], System.Globalization.CultureInfo.InvariantCulture); }
                return l;
            case FieldType.Double:
                var d = new double?[n];
                for (var i = 0; i < n; i++) { d[i] = values[i] is null ? null : Convert.ToDouble(values[i], System.Globalization.CultureInfo.InvariantCulture); }
                return d;
            case FieldType.Boolean:
                return values.Select(v => (bool?)v).ToArray();
            case FieldType.Timestamp:
                return values.Select(v => v switch
                {
                    DateTime t => DateTime.SpecifyKind(t, DateTimeKind.Utc),
                    DateTimeOffset o => o.UtcDateTime,
                    _ => (DateTime?)null,
                }).ToArray();
            case FieldType.Date:
                return values.Select(v => (DateOnly?)v).ToArray();
            default:
                return values.Select(v => v switch
                {
                    null => null,
                    string s => s,
                    BigInteger b => b.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    System.Collections.IEnumerable or System.Collections.IDictionary => System.Text.Json.JsonSerializer.Serialize(v),
                    _ => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture),
                }).ToArray();
        }
    }

    private void Exec(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public void Dispose() => _connection.Dispose();
}

/// <summary>The rows that passed (indexes into the loaded table, in order), each expression's values for them and type, and the rows that failed with DuckDB's reason.</summary>
public sealed record SqlResult(IReadOnlyList<int> Rows, Array[] Columns, FieldType[] Types, IReadOnlyList<(int Row, string Reason)> Failed);
