using System.Globalization;
using System.Text.RegularExpressions;
using Sluice.Core.Config;

namespace Sluice.Models.Rules;

/// <summary>Reads one column of a clean model (<c>columns.&lt;name&gt;</c>); defaults are <see cref="CleanColumn"/>'s initialisers.</summary>
public static partial class CleanColumnParser
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference shows them.</summary>
    private static readonly CleanColumn Default = OptionDefaults.Of<CleanColumn>();

    public static CleanColumn? Parse(ConfigMap c, string name)
    {
        ArgumentNullException.ThrowIfNull(c);
        var before = c.Errors.All.Count;
        var from = c.RequiredString("from", doc: "The raw table's column the value is read from.");
        var (type, precision, scale) = TypeOf(c);
        var rules = new List<TextRule>();
        foreach (var r in c.StringList("clean", doc: "Text rules applied in order before conversion: trim, strip_control, collapse_whitespace, lower, upper, title_case."))
        {
            if (Enum.TryParse<TextRule>(r.Replace("_", "", StringComparison.Ordinal), ignoreCase: true, out var rule) && !int.TryParse(r, out _)) { rules.Add(rule); }
            else { c.Error("clean", $"unknown rule '{r}' (known: trim, strip_control, collapse_whitespace, lower, upper, title_case)"); }
        }

        var required = c.String("required", doc: "Reason code of the rows whose value is empty after cleaning (true: missing_<column>); an empty value becomes NULL when not given.");
        var formats = c.StringList("formats", doc: "Type date: the accepted formats, tried in order (yyyy, MM or M, dd or d with one separator or none: dd/MM/yyyy, yyyyMMdd).", fallback: Default.Formats);
        foreach (var f in formats.Where(f => DateFormat.TryParse(f) is null))
        {
            c.Error("formats", $"'{f}' is not a supported date format (three parts yyyy, MM or M, dd or d, with one separator between them, or none: yyyy-MM-dd, dd/MM/yyyy, MM/dd/yyyy, dd.MM.yyyy, yyyyMMdd)");
        }

        if (c.Has("formats") && type != CleanType.Date) { c.Error("formats", "only applies to type date"); }
        var thousands = c.String("thousands", Default.Thousands, doc: "Type decimal: the thousands separator accepted between digit groups (1,234.50); one character or empty.") ?? Default.Thousands;
        var separator = c.String("decimal", Default.DecimalSeparator, doc: "Type decimal: the decimal separator, one character.") ?? Default.DecimalSeparator;
        if (type != CleanType.Decimal && (c.Has("thousands") || c.Has("decimal"))) { c.Error(c.Has("thousands") ? "thousands" : "decimal", "only applies to type decimal (integers are digits with an optional sign)"); }
        if (separator.Length != 1 || thousands.Length > 1 || thousands == separator || char.IsAsciiDigit(separator[0]) || (thousands.Length == 1 && char.IsAsciiDigit(thousands[0])))
        {
            c.Error("decimal", "decimal is one character and thousands one character or empty, different and not digits");
        }

        var column = new CleanColumn
        {
            Name = name, From = from, Type = type, Line = c.Line,
            Clean = rules,
            RequiredReason = required is null or "false" ? null : required == "true" ? $"missing_{name}" : ModelFileChecks.Reason(c, "required", required),
            InvalidReason = ModelFileChecks.Reason(c, "invalid", c.String("invalid", doc: "Reason code of the rows whose text does not convert to the type (default invalid_<column>).") ?? $"invalid_{name}"),
            Precision = precision, Scale = scale, Thousands = thousands, DecimalSeparator = separator, Formats = formats,
            Min = Bound(c, "min", name, type),
            Max = Bound(c, "max", name, type),
        };
        return c.Errors.All.Count > before ? null : column;
    }

    private static (CleanType Type, int Precision, int Scale) TypeOf(ConfigMap c)
    {
        var typeText = (c.String("type", "text", doc: "text, integer, decimal, decimal(p,s) (default precision 18, scale 2), date or boolean.") ?? "text").Trim().ToLowerInvariant();
        var decimalMatch = DecimalType().Match(typeText);
        if (decimalMatch.Success)
        {
            if (!decimalMatch.Groups[1].Success) { return (CleanType.Decimal, Default.Precision, Default.Scale); }
            var precision = int.Parse(decimalMatch.Groups[1].Value, CultureInfo.InvariantCulture);
            var scale = int.Parse(decimalMatch.Groups[2].Value, CultureInfo.InvariantCulture);
            if (precision is < 1 or > 38 || scale < 0 || scale > precision) { c.Error("type", $"decimal({precision},{scale}): precision 1..38, scale 0..precision"); }
            return (CleanType.Decimal, precision, scale);
        }

        switch (typeText)
        {
            case "text" or "string" or "varchar": return (CleanType.Text, Default.Precision, Default.Scale);
            case "integer" or "int" or "bigint": return (CleanType.Integer, Default.Precision, Default.Scale);
            case "date": return (CleanType.Date, Default.Precision, Default.Scale);
            case "boolean" or "bool": return (CleanType.Boolean, Default.Precision, Default.Scale);
            default:
                c.Error("type", $"unknown type '{typeText}' (expected text, integer, decimal, decimal(p,s), date or boolean)");
                return (CleanType.Text, Default.Precision, Default.Scale);
        }
    }

    /// <summary><c>min: 0</c> or <c>min: {value: 0, reason: negative_amount}</c>; a description shows both forms.</summary>
    private static Bound? Bound(ConfigMap c, string key, string column, CleanType type)
    {
        var defaultReason = $"{(key == "min" ? "below_min" : "above_max")}_{column}";
        var doc = $"Integer, decimal and date columns: the {(key == "min" ? "smallest" : "largest")} value accepted (dates as yyyy-MM-dd), or {{value: ..., reason: ...}}; rows beyond it are rejected as {(key == "min" ? "below_min" : "above_max")}_<column>.";
        if (!c.Has(key) && !c.Describing) { return null; }
        string? value;
        string reason;
        if (c.IsMapping(key) || c.Describing)
        {
            c.Declare(key, "text or mapping", null, doc);
            var m = c.Map(key)!;
            value = m.RequiredString("value", doc: "The bound.");
            reason = ModelFileChecks.Reason(m, "reason", m.String("reason", doc: "Reason code of the rows beyond it.") ?? defaultReason);
            m.Done();
        }
        else
        {
            value = c.String(key);
            reason = defaultReason;
        }

        var ok = type switch
        {
            CleanType.Integer => long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            CleanType.Decimal => decimal.TryParse(value, NumberStyles.Number, CultureInfo.InvariantCulture, out _),
            CleanType.Date => DateOnly.TryParseExact(value, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _),
            _ => false,
        };
        if (!ok)
        {
            c.Error(key, type is CleanType.Integer or CleanType.Decimal or CleanType.Date
                ? $"'{value}' is not a {type.ToString().ToLowerInvariant()} (dates as yyyy-MM-dd)"
                : $"only applies to integer, decimal and date columns");
            return null;
        }

        return new Bound(value!, reason);
    }

    [GeneratedRegex(@"^(?:decimal|numeric)(?:\(\s*(\d+)\s*,\s*(\d+)\s*\))?$", RegexOptions.CultureInvariant)]
    private static partial Regex DecimalType();
}
