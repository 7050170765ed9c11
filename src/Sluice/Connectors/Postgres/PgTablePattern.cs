using System.Text;
using System.Text.RegularExpressions;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// A <c>tables:</c> entry as SQL spells a table: <c>[schema.]table</c>, each part either unquoted (folded to lower case,
/// as Postgres does; <c>*</c> matches any run of characters) or double-quoted (taken exactly, <c>""</c> for a quote,
/// <c>*</c> literal). So <c>public.*</c>, <c>sales.order_*</c>, <c>"MixedCase"</c> and <c>"Quoted . Table"</c>.
/// </summary>
public sealed record PgTablePattern(string Text, string? SchemaPattern, string NamePattern, bool SchemaWild, bool NameWild)
{
    public bool IsPattern => SchemaWild || NameWild;

    /// <summary>Parses an entry; null and a reason when it is not a table name or pattern.</summary>
    public static PgTablePattern? Parse(string text, out string? error)
    {
        error = null;
        var parts = new List<(string Value, bool Wild)>();
        var i = 0;
        while (true)
        {
            var part = new StringBuilder();
            var wild = false;
            if (i < text.Length && text[i] == '"')
            {
                i++;
                while (true)
                {
                    if (i >= text.Length) { error = $"unterminated quoted name in '{text}'"; return null; }
                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"') { part.Append('"'); i += 2; continue; }
                        i++;
                        break;
                    }

                    part.Append(text[i++]);
                }
            }
            else
            {
                while (i < text.Length && text[i] != '.')
                {
                    var c = text[i++];
                    if (c == '*') { wild = true; part.Append('*'); }
                    else if (char.IsAsciiLetterOrDigit(c) || c == '_' || c == '$') { part.Append(char.ToLowerInvariant(c)); }
                    else { error = $"'{text}': '{c}' needs the name in double quotes (\"{text}\")"; return null; }
                }
            }

            if (part.Length == 0) { error = $"'{text}': an empty name"; return null; }
            parts.Add((part.ToString(), wild));
            if (i >= text.Length) { break; }
            if (text[i] != '.') { error = $"'{text}': expected '.' after a quoted name"; return null; }
            i++;
        }

        if (parts.Count > 2) { error = $"'{text}': at most schema.table (quote a name that contains a dot)"; return null; }
        return parts.Count == 2
            ? new PgTablePattern(text, parts[0].Value, parts[1].Value, parts[0].Wild, parts[1].Wild)
            : new PgTablePattern(text, null, parts[0].Value, false, parts[0].Wild);
    }

    public bool Matches(string schema, string name, string defaultSchema) =>
        Match(SchemaPattern ?? defaultSchema, SchemaWild, schema) && Match(NamePattern, NameWild, name);

    private static bool Match(string pattern, bool wild, string value)
    {
        if (!wild) { return pattern == value; }
        var regex = "^" + string.Join(".*", pattern.Split('*').Select(Regex.Escape)) + "$";
        return Regex.IsMatch(value, regex, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
    }
}
