using System.Globalization;
using System.Text;
using DuckDB.NET.Data;
using Sluice.Core;
using Sluice.Core.Schema;

namespace Sluice.Lake;

/// <summary>
/// SQL over the lake with DuckDB, in memory and in-process. Each connection creates the views <c>zone.table</c> from
/// the manifest at open time, so no process ever holds a DuckDB database file: a running instance, <c>query</c> and
/// <c>job run</c> can all work on the same data folder at once (DuckDB allows a single writer per database file; the
/// lake's only writer coordination is the SQLite manifest).
/// </summary>
public sealed class LakeQueryEngine(LakeStore lake)
{
    private static readonly string[] ReadOnlyStarts = ["SELECT", "WITH", "FROM", "SHOW", "DESCRIBE", "SUMMARIZE", "EXPLAIN", "TABLE", "VALUES", "(" ];

    public DuckDBConnection Open()
    {
        var connection = DuckDb.OpenMemory(Path.Combine(lake.Data.Root, "tmp", "duckdb"));
        foreach (var table in lake.Tables())
        {
            Exec(connection, $"CREATE SCHEMA IF NOT EXISTS {Quote(table.Zone)}");
            Exec(connection, $"CREATE OR REPLACE VIEW {Quote(table.Zone)}.{Quote(table.Name)} AS {Source(table)}");
        }

        CreateStoredViews(connection, lake.Views.All());
        return connection;
    }

    /// <summary>
    /// Creates the stored views. A view may read another, in any order, so those that fail are retried while others
    /// succeed; one that can never be created (its tables are gone) is left out rather than failing the session.
    /// </summary>
    internal static void CreateStoredViews(DuckDBConnection connection, IReadOnlyList<(string Name, string Sql)> views)
    {
        var waiting = views.ToList();
        while (waiting.Count > 0)
        {
            var failed = new List<(string Name, string Sql)>();
            foreach (var view in waiting)
            {
                var dot = view.Name.IndexOf('.', StringComparison.Ordinal);
                try
                {
                    Exec(connection, $"CREATE SCHEMA IF NOT EXISTS {Quote(view.Name[..dot])}");
                    Exec(connection, $"CREATE OR REPLACE VIEW {Quote(view.Name[..dot])}.{Quote(view.Name[(dot + 1)..])} AS {view.Sql}");
                }
                catch (DuckDBException)
                {
                    failed.Add(view);
                }
            }

            if (failed.Count == waiting.Count)
            {
                return;
            }

            waiting = failed;
        }
    }

    /// <summary>The SELECT that reads a table's committed files (or an empty, correctly typed relation when it has none).</summary>
    public string Source(LakeTable table, IReadOnlyCollection<string>? partitions = null) => SourceOf(table, lake.Files(table.QualifiedName, partitions));

    /// <summary>
    /// The SELECT that reads exactly these files of a table (a reader that pins what it saw at one moment). For a
    /// mirror, the current row of each key (<see cref="MirrorSql.Current"/>): a query sees the source table.
    /// </summary>
    public static string SourceOf(LakeTable table, IReadOnlyList<string> files)
    {
        ArgumentNullException.ThrowIfNull(table);
        return table.IsMirror ? MirrorSql.Current(table, RowsOf(table, files)) : RowsOf(table, files);
    }

    /// <summary>Every row these files hold, as written (a mirror's: its changes).</summary>
    public static string RowsOf(LakeTable table, IReadOnlyList<string> files)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(files);
        if (files.Count == 0)
        {
            var columns = table.Columns.Select(c => $"CAST(NULL AS {c.DuckDbType()}) AS {Quote(c.Name)}");
            if (table.IsPartitioned)
            {
                columns = columns.Append($"CAST(NULL AS {table.PartitionType.DuckDbType()}) AS {Quote(table.PartitionKey)}");
            }

            return $"SELECT {string.Join(", ", columns)} WHERE false";
        }

        var list = string.Join(", ", files.Select(f => Literal(f)));
        if (!table.IsPartitioned)
        {
            return $"SELECT * FROM read_parquet([{list}], hive_partitioning = false, union_by_name = true)";
        }

        var partitionType = table.PartitionType.DuckDbType();
        return $"SELECT * REPLACE (CAST({Quote(table.PartitionKey)} AS {partitionType}) AS {Quote(table.PartitionKey)}) " +
               $"FROM read_parquet([{list}], hive_partitioning = true, union_by_name = true)";
    }

    /// <summary>Runs one read-only statement and returns at most <paramref name="maxRows"/> rows.</summary>
    public QueryResult Query(string sql, int maxRows = int.MaxValue)
    {
        EnsureReadOnly(sql);
        using var connection = Open();
        using var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        try
        {
            using var reader = cmd.ExecuteReader();
            return QueryResult.Read(reader, maxRows);
        }
        catch (DuckDBException e)
        {
            throw new SluiceException($"query failed: {e.Message}", e);
        }
    }

    internal static void EnsureReadOnly(string sql)
    {
        var trimmed = StripComments(sql).Trim().TrimEnd(';').Trim();
        if (trimmed.Length == 0)
        {
            throw new SluiceException("query: the SQL is empty.");
        }

        if (!ReadOnlyStarts.Any(s => trimmed.StartsWith(s, StringComparison.OrdinalIgnoreCase)))
        {
            throw new SluiceException($"query: only read-only statements are allowed (SELECT, WITH, FROM, SHOW, DESCRIBE, SUMMARIZE, EXPLAIN); got '{trimmed.Split(' ', 2)[0]}'.");
        }

        if (HasSecondStatement(trimmed))
        {
            throw new SluiceException("query: one statement at a time; remove the ';' in the middle.");
        }
    }

    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    public static string Literal(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    public static void Exec(DuckDBConnection connection, string sql)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private static bool HasSecondStatement(string sql)
    {
        var inString = false;
        foreach (var ch in sql)
        {
            if (ch == '\'') { inString = !inString; }
            else if (ch == ';' && !inString) { return true; }
        }

        return false;
    }

    private static string StripComments(string sql)
    {
        var sb = new StringBuilder(sql.Length);
        foreach (var line in sql.Split('\n'))
        {
            var at = line.IndexOf("--", StringComparison.Ordinal);
            sb.Append(at >= 0 ? line[..at] : line).Append('\n');
        }

        return sb.ToString();
    }

    public static string FormatValue(object? value) => value switch
    {
        null => "",
        bool b => b ? "true" : "false",
        DateTime dt => dt.ToString(dt.TimeOfDay == TimeSpan.Zero && dt.Kind == DateTimeKind.Unspecified ? "yyyy-MM-dd" : "yyyy-MM-dd HH:mm:ss.FFFFFF", CultureInfo.InvariantCulture).TrimEnd('.'),
        DateOnly d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        DateTimeOffset o => o.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.FFFFFF", CultureInfo.InvariantCulture).TrimEnd('.') + "+00",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
