using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using static Sluice.Models.SqlDialect;

namespace Sluice.Models.Rules;

/// <summary>
/// Writes the SELECT of a clean model for one engine and one day. Its rows are every raw row of the day with the
/// converted output columns, the lineage (<c>file_date</c>, <c>source_file</c>, <c>source_row</c>), and
/// <c>_reason</c> / <c>_reason_column</c> / <c>_raw</c> (NULL reason: a clean row; else the first rule it breaks,
/// the column to blame and the raw values as a JSON object). The engine splits them into the model's table and the
/// quarantine. Conversions never raise errors: each is guarded by a pattern, so bad text becomes a reason code.
/// </summary>
public static class CleanSqlBuilder
{
    public const string ReasonColumn = "_reason";
    public const string ReasonColumnColumn = "_reason_column";
    public const string RawColumn = "_raw";

    /// <summary>The output columns of the clean table, in order (declared columns, then the lineage).</summary>
    public static IReadOnlyList<(string Name, string SqlType)> OutputColumns(CleanSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return [.. spec.Columns.Select(c => (c.Name, c.SqlType)), (CleanSpec.FileDateOutput, "DATE"), (CleanSpec.SourceFileOutput, "VARCHAR"), (CleanSpec.SourceRowOutput, "BIGINT")];
    }

    public static string Build(string model, CleanSpec spec, SqlDialect d, DateOnly day, IReadOnlyCollection<string> sourceColumns)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(d);
        ArgumentNullException.ThrowIfNull(sourceColumns);
        var missing = spec.Columns.Select(c => c.From)
            .Concat([spec.DateColumn, spec.FileColumn, spec.RowColumn, spec.LoadedAtColumn])
            .Where(c => !sourceColumns.Contains(c, StringComparer.Ordinal)).Distinct().ToList();
        if (missing.Count > 0)
        {
            throw new Core.SluiceException($"{model}: {spec.Source} has no column {string.Join(", ", missing.Select(m => $"'{m}'"))} (its columns: {string.Join(", ", sourceColumns)})");
        }

        var raws = spec.Columns.Select(c => c.From).Distinct(StringComparer.Ordinal).ToList();
        string Raw(string from) => $"_r{raws.IndexOf(from)}";

        var sb = new StringBuilder();
        sb.Append("WITH _src AS (SELECT * FROM ").Append(QuoteName(spec.Source)).Append(" WHERE ").Append(Quote(spec.DateColumn)).Append(" = ").Append(Date(day)).Append("),\n");
        if (spec.SameDateFiles == SameDateFiles.Latest)
        {
            // A later file for the same day replaces the earlier one: only the rows of the file loaded last count.
            sb.Append("_latest AS (SELECT ").Append(Quote(spec.FileColumn)).Append(" AS f, ").Append(Quote(spec.LoadedAtColumn)).Append(" AS l FROM _src ORDER BY ")
              .Append(Quote(spec.LoadedAtColumn)).Append(" DESC, ").Append(Quote(spec.FileColumn)).Append(" DESC LIMIT 1),\n");
            sb.Append("_day AS (SELECT s.* FROM _src s JOIN _latest ON s.").Append(Quote(spec.FileColumn)).Append(" = _latest.f AND s.")
              .Append(Quote(spec.LoadedAtColumn)).Append(" = _latest.l),\n");
        }
        else
        {
            sb.Append("_day AS (SELECT * FROM _src),\n");
        }

        sb.Append("_text AS MATERIALIZED (SELECT ").Append(Quote(spec.FileColumn)).Append(" AS source_file, CAST(").Append(Quote(spec.RowColumn)).Append(" AS BIGINT) AS source_row, ")
          .Append(Quote(spec.DateColumn)).Append(" AS file_date");
        foreach (var r in raws) { sb.Append(", ").Append(Quote(r)).Append(" AS ").Append(Raw(r)); }
        for (var i = 0; i < spec.Columns.Count; i++)
        {
            // The source column itself, not its alias: PostgreSQL does not let a select list use its own aliases.
            sb.Append(", ").Append(Normalise(spec.Columns[i], Quote(spec.Columns[i].From), d)).Append(" AS _t").Append(i);
        }

        sb.Append(" FROM _day),\n");
        // MATERIALIZED (here and above): PostgreSQL would otherwise inline the normalisations and conversions into every
        // later reference and run them again, several times per value.
        sb.Append("_typed AS MATERIALIZED (SELECT *");
        for (var i = 0; i < spec.Columns.Count; i++)
        {
            sb.Append(", ").Append(Convert(spec.Columns[i], $"_t{i}", d)).Append(" AS ").Append(Quote(spec.Columns[i].Name));
        }

        sb.Append(" FROM _text),\n");

        var reasons = new List<(string When, string Reason, string? Column)>();
        if (spec.InvalidTextReason is not null)
        {
            foreach (var c in spec.Columns.DistinctBy(c => c.From))
            {
                reasons.Add(($"strpos(COALESCE({Raw(c.From)}, ''), {Literal("\uFFFD")}) > 0", spec.InvalidTextReason, c.Name));
            }
        }

        for (var i = 0; i < spec.Columns.Count; i++)
        {
            var c = spec.Columns[i];
            var text = $"_t{i}";
            var value = Quote(c.Name);
            if (c.RequiredReason is not null)
            {
                reasons.Add(($"({text} IS NULL OR {text} = '')", c.RequiredReason, c.Name));
            }

            if (c.Type != CleanType.Text)
            {
                reasons.Add(($"({text} IS NOT NULL AND {text} <> '' AND {value} IS NULL)", c.InvalidReason, c.Name));
            }

            if (c.Min is not null) { reasons.Add(($"{value} < {BoundLiteral(c, c.Min.Value)}", c.Min.Reason, c.Name)); }
            if (c.Max is not null) { reasons.Add(($"{value} > {BoundLiteral(c, c.Max.Value)}", c.Max.Reason, c.Name)); }
        }

        foreach (var check in spec.Checks)
        {
            reasons.Add(($"({d.Translate(check.When)})", check.Reason, null));
        }

        sb.Append("_checked AS MATERIALIZED (SELECT *, ").Append(Case(reasons.Select(r => (r.When, Literal(r.Reason))))).Append(" AS _row_reason, ")
          .Append(Case(reasons.Select(r => (r.When, r.Column is null ? "NULL" : Literal(r.Column))))).Append(" AS _row_column FROM _typed),\n");
        sb.Append("_dups AS (SELECT *, row_number() OVER (PARTITION BY ").Append(string.Join(", ", raws.Select(Raw))).Append(" ORDER BY source_row) AS _dup_rank FROM _checked),\n");
        var clean = "(_row_reason IS NULL AND _dup_rank = 1)";
        if (spec.Key is { } key)
        {
            sb.Append("_keys AS (SELECT *, row_number() OVER (PARTITION BY ").Append(clean).Append(", ").Append(string.Join(", ", key.Columns.Select(Quote)))
              .Append(" ORDER BY source_row ").Append(key.KeepLast ? "DESC" : "ASC").Append(") AS _key_rank FROM _dups),\n");
        }
        else
        {
            sb.Append("_keys AS (SELECT *, 1 AS _key_rank FROM _dups),\n");
        }

        var final = new List<(string When, string Reason, string? Column)> { ("_row_reason IS NOT NULL", "_row_reason", "_row_column") };
        if (spec.DuplicateReason is not null) { final.Add(("_dup_rank > 1", Literal(spec.DuplicateReason), "NULL")); }
        if (spec.Key is not null) { final.Add(("_key_rank > 1", Literal(spec.Key.Reason), Literal(string.Join(",", spec.Key.Columns)))); }
        for (var i = 0; i < spec.Lookups.Count; i++)
        {
            var l = spec.Lookups[i];
            final.Add(($"(k.{Quote(l.Column)} IS NOT NULL AND _lk{i}.v IS NULL)", Literal(l.Reason), Literal(l.Column)));
        }

        sb.Append("_final AS (SELECT k.*, ").Append(Case(final.Select(f => (f.When, f.Reason)))).Append(" AS ").Append(ReasonColumn).Append(", ")
          .Append(Case(final.Select(f => (f.When, f.Column ?? "NULL")))).Append(" AS ").Append(ReasonColumnColumn).Append(" FROM _keys k");
        for (var i = 0; i < spec.Lookups.Count; i++)
        {
            var l = spec.Lookups[i];
            sb.Append(" LEFT JOIN (SELECT DISTINCT ").Append(Quote(l.RelationColumn)).Append(" AS v FROM ").Append(QuoteName(l.Relation)).Append($") _lk{i} ON _lk{i}.v = k.").Append(Quote(l.Column));
        }

        sb.Append(")\n");
        sb.Append("SELECT ");
        foreach (var c in spec.Columns) { sb.Append(Quote(c.Name)).Append(", "); }
        sb.Append("file_date, source_file, source_row, ").Append(ReasonColumn).Append(", ").Append(ReasonColumnColumn).Append(", ");
        // The raw values as JSON only for rejected rows: they are all the quarantine needs, and building them costs.
        sb.Append("CASE WHEN ").Append(ReasonColumn).Append(" IS NOT NULL THEN '{' || ");
        for (var i = 0; i < raws.Count; i++)
        {
            if (i > 0) { sb.Append(" || ',' || "); }
            sb.Append(JsonKey(raws[i])).Append(" || COALESCE(").Append(d.JsonString(Raw(raws[i]))).Append(", 'null')");
        }

        sb.Append(" || '}' END AS ").Append(RawColumn).Append(" FROM _final");
        return sb.ToString();
    }

    private static string Case(IEnumerable<(string When, string Then)> branches)
    {
        var list = branches.ToList();
        if (list.Count == 0) { return "CAST(NULL AS VARCHAR)"; }
        return "CASE " + string.Join(" ", list.Select(b => $"WHEN {b.When} THEN {b.Then}")) + " END";
    }

    private static string Normalise(CleanColumn c, string raw, SqlDialect d)
    {
        var rules = c.Clean.ToList();
        if (c.Type != CleanType.Text && !rules.Contains(TextRule.Trim) && !rules.Contains(TextRule.CollapseWhitespace))
        {
            rules.Add(TextRule.Trim);
        }

        var e = raw;
        foreach (var rule in rules)
        {
            e = rule switch
            {
                TextRule.Trim => $"trim({e})",
                TextRule.StripControl => $"regexp_replace({e}, {Literal(d.ControlCharacters)}, '', 'g')",
                TextRule.CollapseWhitespace => $"trim(regexp_replace({e}, {Literal(d.WhiteSpace + "+")}, ' ', 'g'))",
                TextRule.Lower => $"lower({e})",
                TextRule.Upper => $"upper({e})",
                TextRule.TitleCase => $"title_case({e})",
                _ => e,
            };
        }

        return e;
    }

    private static string Convert(CleanColumn c, string t, SqlDialect d) => c.Type switch
    {
        CleanType.Integer => $"CASE WHEN {d.FullMatch(t, "[+-]?[0-9]{1,18}")} THEN CAST({t} AS BIGINT) END",
        CleanType.Decimal => Decimal(c, t, d),
        CleanType.Date => c.Formats.Count == 1 ? DateExpr(DateFormat.TryParse(c.Formats[0])!, t, d) : "COALESCE(" + string.Join(", ", c.Formats.Select(f => DateExpr(DateFormat.TryParse(f)!, t, d))) + ")",
        CleanType.Boolean => $"CASE WHEN lower({t}) IN ('true', 't', 'yes', 'y', '1') THEN TRUE WHEN lower({t}) IN ('false', 'f', 'no', 'n', '0') THEN FALSE END",
        _ => $"NULLIF({t}, '')",
    };

    private static string Decimal(CleanColumn c, string t, SqlDialect d)
    {
        var sep = Regex.Escape(c.DecimalSeparator);
        var shape = c.Thousands.Length == 0
            ? $"[+-]?[0-9]+({sep}[0-9]+)?"
            : $"[+-]?([0-9]{{1,3}}({Regex.Escape(c.Thousands)}[0-9]{{3}})+|[0-9]+)({sep}[0-9]+)?";
        var normal = t;
        if (c.Thousands.Length > 0) { normal = $"replace({normal}, {Literal(c.Thousands)}, '')"; }
        if (c.DecimalSeparator != ".") { normal = $"replace({normal}, {Literal(c.DecimalSeparator)}, '.')"; }
        var intDigits = c.Precision - c.Scale;
        // A value that would round past the column's range is rejected instead of failing the cast. The check reads the
        // text as a double (a wide decimal cast costs 20 times more), so a value within 1 of the limit counts as beyond it.
        var limit = intDigits == 0 ? "1" : "1" + new string('0', intDigits);
        return $"CASE WHEN {d.FullMatch(t, shape)} AND {d.FullMatch(normal, $"[+-]?[0-9]{{1,{Math.Max(intDigits, 1)}}}(\\.[0-9]+)?")} " +
               $"AND abs(CAST({normal} AS DOUBLE PRECISION)) < {limit} THEN CAST({normal} AS DECIMAL({c.Precision},{c.Scale})) END";
    }

    private static string DateExpr(DateFormat f, string t, SqlDialect d)
    {
        string core = t, pattern;
        string[] parts = new string[3];
        if (f.IsIso)
        {
            pattern = @"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?";
            core = $"substr({t}, 1, 10)";
        }
        else
        {
            var sep = f.Separator is null ? "" : Regex.Escape(f.Separator.Value.ToString());
            pattern = string.Join(sep, f.Widths.Select(w => w == 4 ? "[0-9]{4}" : f.Separator is null ? "[0-9]{2}" : "[0-9]{1,2}"));
        }

        var at = 1;
        for (var i = 0; i < 3; i++)
        {
            if (f.IsIso || f.Separator is not null)
            {
                parts[i] = $"CAST(split_part({core}, {Literal(f.IsIso ? "-" : f.Separator!.Value.ToString())}, {i + 1}) AS INTEGER)";
            }
            else
            {
                parts[i] = $"CAST(substr({core}, {at}, {f.Widths[i]}) AS INTEGER)";
                at += f.Widths[i];
            }
        }

        var y = parts[f.Order.ToList().IndexOf('y')];
        var m = parts[f.Order.ToList().IndexOf('M')];
        var dd = parts[f.Order.ToList().IndexOf('d')];
        var daysInMonth = $"CASE WHEN {m} IN (4, 6, 9, 11) THEN 30 WHEN {m} = 2 THEN CASE WHEN ({y} % 4 = 0 AND {y} % 100 <> 0) OR {y} % 400 = 0 THEN 29 ELSE 28 END ELSE 31 END";
        return $"CASE WHEN {d.FullMatch(t, pattern)} THEN CASE WHEN {y} >= 1 AND {m} BETWEEN 1 AND 12 AND {dd} BETWEEN 1 AND {daysInMonth} THEN make_date({y}, {m}, {dd}) END END";
    }

    private static string BoundLiteral(CleanColumn c, string value) => c.Type switch
    {
        CleanType.Date => Date(DateOnly.ParseExact(value, "yyyy-MM-dd", CultureInfo.InvariantCulture)),
        CleanType.Decimal => $"CAST({Literal(value)} AS {c.SqlType})",
        _ => value,
    };
}
