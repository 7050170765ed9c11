using System.Globalization;
using System.Text.Json;

namespace Sluice.Models;

/// <summary>
/// What differs between the engines for the SQL the model engine writes or passes on. Model SQL is written once, in the
/// subset both DuckDB and PostgreSQL understand (see docs/recipes/sales-warehouse.md, "SQL subset"); <see cref="Translate"/>
/// fixes the few spellings that differ, and the generated SQL (clean rules, merges, tests) goes through the methods here.
/// </summary>
public abstract class SqlDialect
{
    public static readonly SqlDialect DuckDb = new DuckDbDialect();

    public static readonly SqlDialect Postgres = new PostgresDialect();

    public abstract string Engine { get; }

    /// <summary>Regular expression (RE2 / POSIX ARE common subset) matching the whole text.</summary>
    public abstract string FullMatch(string expression, string pattern);

    /// <summary>The text as a JSON string (quoted, escaped), NULL for NULL.</summary>
    public abstract string JsonString(string expression);

    /// <summary>Character class of control characters (C0 and C1) other than white space.</summary>
    public abstract string ControlCharacters { get; }

    /// <summary>Character class of white space, no-break space included.</summary>
    public abstract string WhiteSpace { get; }

    /// <summary>Turns model SQL (the common subset) into this engine's SQL.</summary>
    public virtual string Translate(string sql) => sql;

    /// <summary>The model's SQL for a run as of <paramref name="asOf"/>.</summary>
    public string Render(ModelDefinition model, DateOnly asOf)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Translate(SqlText.Render(model.Sql, new Dictionary<string, string> { ["as_of"] = Date(asOf) }));
    }

    public static string Date(DateOnly day) => $"DATE '{day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}'";

    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary><c>schema.table</c> quoted part by part.</summary>
    public static string QuoteName(string qualified)
    {
        ArgumentNullException.ThrowIfNull(qualified);
        var dot = qualified.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? Quote(qualified) : Quote(qualified[..dot]) + "." + Quote(qualified[(dot + 1)..]);
    }

    public static string Literal(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    /// <summary>A JSON object key followed by ':' as a SQL literal, for building JSON text by concatenation.</summary>
    public static string JsonKey(string key) => Literal(JsonSerializer.Serialize(key) + ":");

    private sealed class DuckDbDialect : SqlDialect
    {
        public override string Engine => "duckdb";

        public override string FullMatch(string expression, string pattern) => $"regexp_full_match({expression}, {Literal(pattern)})";

        public override string JsonString(string expression) => $"CAST(to_json({expression}) AS VARCHAR)";

        public override string ControlCharacters => @"[\x00-\x08\x0E-\x1F\x7F-\x{9F}]";

        public override string WhiteSpace => @"[ \t\n\r\f\v\x{A0}]";
    }

    private sealed class PostgresDialect : SqlDialect
    {
        public override string Engine => "postgres";

        public override string FullMatch(string expression, string pattern) => $"({expression} ~ {Literal("^(?:" + pattern + ")$")})";

        public override string JsonString(string expression) => $"CAST(to_json(CAST({expression} AS TEXT)) AS TEXT)";

        // PostgreSQL text cannot hold U+0000 at all (the raw mirror drops it), so the class starts at U+0001.
        public override string ControlCharacters => @"[\x01-\x08\x0E-\x1F\x7F-\x9F]";

        public override string WhiteSpace => @"[ \t\n\r\f\v\u00A0]";

        /// <summary>DuckDB's DOUBLE is PostgreSQL's DOUBLE PRECISION; everything else of the subset is spelled alike.</summary>
        public override string Translate(string sql) =>
            SqlText.ReplaceWord(sql, "DOUBLE", (blank, end) =>
                blank.AsSpan(end).TrimStart().StartsWith("PRECISION", StringComparison.OrdinalIgnoreCase) ? null : "DOUBLE PRECISION");
    }
}
