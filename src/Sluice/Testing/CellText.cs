using System.Globalization;

namespace Sluice.Testing;

/// <summary>
/// The form two cells are compared in: numbers as numbers (<c>12.5</c> = <c>12.50</c>), timestamps as UTC instants
/// (<c>2024-01-01T10:00:00Z</c> = <c>2024-01-01 10:00:00</c>), NULL and empty text alike, anything else as its text.
/// Expected cells (text) and actual values (typed, from DuckDB, PostgreSQL or ClickHouse) go through the same function.
/// </summary>
public static class CellText
{
    private const string Null = "\u0000null";

    public static string Canonical(object? value) => value switch
    {
        null or DBNull => Null,
        string s => CanonicalText(s),
        bool b => b ? "true" : "false",
        DateTime d => Instant(d.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(d, DateTimeKind.Utc) : d.ToUniversalTime()),
        DateTimeOffset d => Instant(d.UtcDateTime),
        DateOnly d => Instant(d.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc)),
        decimal m => Number(m),
        double or float => Convert.ToDouble(value, CultureInfo.InvariantCulture) is var f && double.IsFinite(f) && Math.Abs(f) < 7.9e27 ? Number((decimal)f) : Convert.ToString(value, CultureInfo.InvariantCulture)!,
        IConvertible c when IsInteger(value) => Number(Convert.ToDecimal(c, CultureInfo.InvariantCulture)),
        System.Numerics.BigInteger i => i.ToString(CultureInfo.InvariantCulture),
        IFormattable f => CanonicalText(f.ToString(null, CultureInfo.InvariantCulture)),
        _ => CanonicalText(value.ToString() ?? ""),
    };

    /// <summary>How a value is shown in a diff: as the fixture would write it.</summary>
    public static string Show(object? value) => value switch
    {
        null or DBNull => "NULL",
        DateTime d => d.ToString("yyyy-MM-dd HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture).TrimEnd('.'),
        DateTimeOffset d => d.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture).TrimEnd('.') + "Z",
        DateOnly d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string CanonicalText(string text)
    {
        if (text.Length == 0) { return Null; }
        var trimmed = text.Trim();
        if (trimmed.Length > 0 && (char.IsAsciiDigit(trimmed[0]) || trimmed[0] is '-' or '+' or '.'))
        {
            if (decimal.TryParse(trimmed, NumberStyles.Float, CultureInfo.InvariantCulture, out var m)) { return Number(m); }
            // Only what starts as a date (yyyy-MM-dd) is read as one: "1/2/3" stays text.
            if (trimmed.Length >= 10 && trimmed[4] == '-' && trimmed[7] == '-'
                && DateTimeOffset.TryParse(trimmed, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var instant))
            {
                return Instant(instant.UtcDateTime);
            }
        }

        return text switch
        {
            "true" or "True" or "TRUE" => "true",
            "false" or "False" or "FALSE" => "false",
            _ => text,
        };
    }

    private static string Number(decimal m) => "n:" + (m / 1.0000000000000000000000000000m).ToString(CultureInfo.InvariantCulture);

    private static string Instant(DateTime utc) => "t:" + utc.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture);

    private static bool IsInteger(object value) => value is sbyte or byte or short or ushort or int or uint or long or ulong;
}
