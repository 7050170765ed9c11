using System.Text;
using System.Text.RegularExpressions;

namespace Sluice.Models;

/// <summary>Reading model SQL without parsing it fully: comments and string literals blanked, qualified names found, templates filled.</summary>
public static partial class SqlText
{
    /// <summary>
    /// The SQL with comments and the contents of string literals replaced by spaces (quoted identifiers are kept), so
    /// scanning for names or semicolons is not fooled by text. Offsets and line breaks are preserved.
    /// </summary>
    public static string Blank(string sql)
    {
        ArgumentNullException.ThrowIfNull(sql);
        var sb = new StringBuilder(sql);
        var i = 0;
        while (i < sql.Length)
        {
            var c = sql[i];
            if (c == '-' && i + 1 < sql.Length && sql[i + 1] == '-')
            {
                while (i < sql.Length && sql[i] != '\n') { sb[i++] = ' '; }
            }
            else if (c == '/' && i + 1 < sql.Length && sql[i + 1] == '*')
            {
                var end = sql.IndexOf("*/", i + 2, StringComparison.Ordinal);
                end = end < 0 ? sql.Length : end + 2;
                for (; i < end; i++) { if (sql[i] != '\n') { sb[i] = ' '; } }
            }
            else if (c == '\'')
            {
                i++;
                while (i < sql.Length)
                {
                    if (sql[i] == '\'' && i + 1 < sql.Length && sql[i + 1] == '\'') { sb[i] = ' '; sb[i + 1] = ' '; i += 2; continue; }
                    if (sql[i] == '\'') { i++; break; }
                    if (sql[i] != '\n') { sb[i] = ' '; }
                    i++;
                }
            }
            else if (c == '"')
            {
                var end = sql.IndexOf('"', i + 1);
                i = end < 0 ? sql.Length : end + 1;
            }
            else
            {
                i++;
            }
        }

        return sb.ToString();
    }

    /// <summary>Every <c>schema.table</c> name in the SQL (lower case, quotes removed), outside comments and strings.</summary>
    public static IReadOnlyList<string> QualifiedNames(string sql) =>
        QualifiedName().Matches(Blank(sql)).Select(m => Unquote(m.Groups[1].Value) + "." + Unquote(m.Groups[2].Value)).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>The <c>schema.table</c> names that follow FROM or JOIN: the relations a query reads.</summary>
    public static IReadOnlyList<string> ReadRelations(string sql)
    {
        var blank = Blank(sql);
        return FromName().Matches(blank).Where(m => !InsideKeywordFunction(blank, m.Index))
            .Select(m => Unquote(m.Groups[1].Value) + "." + Unquote(m.Groups[2].Value)).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Whether a FROM at <paramref name="at"/> belongs to EXTRACT(x FROM y), SUBSTRING(x FROM n), TRIM(x FROM y) and the like.</summary>
    private static bool InsideKeywordFunction(string blank, int at)
    {
        var depth = 0;
        for (var i = at - 1; i >= 0; i--)
        {
            if (blank[i] == ')') { depth++; }
            else if (blank[i] == '(')
            {
                if (depth > 0) { depth--; continue; }
                var name = KeywordFunction().Match(blank[..i]);
                return name.Success;
            }
        }

        return false;
    }

    [GeneratedRegex(@"\b(EXTRACT|SUBSTRING|TRIM|OVERLAY|POSITION)\s*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex KeywordFunction();

    /// <summary>True when the text holds more than one statement (a ';' followed by more than blanks).</summary>
    public static bool HasSecondStatement(string sql)
    {
        var blank = Blank(sql).TrimEnd().TrimEnd(';');
        return blank.Contains(';', StringComparison.Ordinal);
    }

    /// <summary>The first word of the statement, upper case (SELECT, WITH, ...).</summary>
    public static string FirstWord(string sql)
    {
        var blank = Blank(sql).TrimStart().TrimStart('(');
        var word = FirstWordRegex().Match(blank);
        return word.Success ? word.Value.ToUpperInvariant() : "";
    }

    /// <summary>The names of the <c>{{ name }}</c> placeholders in a template (outside comments and strings).</summary>
    public static IReadOnlyList<string> Placeholders(string sql) =>
        Placeholder().Matches(Blank(sql)).Select(m => m.Groups[1].Value).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>Replaces every <c>{{ name }}</c> by its value (placeholders inside comments and strings are left alone).</summary>
    public static string Render(string sql, IReadOnlyDictionary<string, string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var blank = Blank(sql);
        var sb = new StringBuilder();
        var at = 0;
        foreach (Match m in Placeholder().Matches(blank))
        {
            sb.Append(sql, at, m.Index - at);
            sb.Append(values.TryGetValue(m.Groups[1].Value, out var v) ? v : throw new KeyNotFoundException($"no value for {{{{ {m.Groups[1].Value} }}}}"));
            at = m.Index + m.Length;
        }

        return sb.Append(sql, at, sql.Length - at).ToString();
    }

    /// <summary>Replaces a whole word (case-insensitive) outside comments and strings.</summary>
    public static string ReplaceWord(string sql, string word, Func<string, int, string?> replacement)
    {
        var blank = Blank(sql);
        var sb = new StringBuilder();
        var at = 0;
        foreach (Match m in new Regex($@"(?<![\w.""]){Regex.Escape(word)}(?![\w""])", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)).Matches(blank))
        {
            var with = replacement(blank, m.Index + m.Length);
            if (with is null) { continue; }
            sb.Append(sql, at, m.Index - at).Append(with);
            at = m.Index + m.Length;
        }

        return sb.Append(sql, at, sql.Length - at).ToString();
    }

    public static bool IsIdentifier(string name) => Identifier().IsMatch(name);

    private static string Unquote(string part) =>
        part.StartsWith('"') ? part[1..^1].Replace("\"\"", "\"", StringComparison.Ordinal) : part.ToLowerInvariant();

    [GeneratedRegex(@"(?<![\w.""])(""[^""]+""|[A-Za-z_][A-Za-z0-9_]*)\s*\.\s*(""[^""]+""|[A-Za-z_][A-Za-z0-9_]*)(?![\w""]|\s*\.|\s*\()", RegexOptions.CultureInvariant)]
    private static partial Regex QualifiedName();

    [GeneratedRegex(@"\b(?:FROM|JOIN)\s+(""[^""]+""|[A-Za-z_][A-Za-z0-9_]*)\s*\.\s*(""[^""]+""|[A-Za-z_][A-Za-z0-9_]*)(?![\w""]|\s*\.|\s*\()", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex FromName();

    [GeneratedRegex(@"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", RegexOptions.CultureInvariant)]
    private static partial Regex Placeholder();

    [GeneratedRegex(@"^[A-Za-z]+", RegexOptions.CultureInvariant)]
    private static partial Regex FirstWordRegex();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$", RegexOptions.CultureInvariant)]
    private static partial Regex Identifier();
}
