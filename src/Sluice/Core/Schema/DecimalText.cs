using System.Globalization;

namespace Sluice.Core.Schema;

/// <summary>An exact decimal as its text (<see cref="FieldType.Decimal"/>), as the sinks that store it as a binary number need it.</summary>
public static class DecimalText
{
    /// <summary>True for the text of a value that is not a finite number (a DECIMAL of Parquet or ClickHouse has none).</summary>
    public static bool IsNotFinite(string? text) => text is "NaN" or "Infinity" or "-Infinity";

    /// <summary>
    /// The unscaled value at <paramref name="scale"/>: <c>-12.5</c> at scale 2 is -1250. Postgres writes a numeric(P,S)
    /// with exactly S decimals; fewer are padded, never rounded, and more (which a column of that scale cannot hold) throw.
    /// </summary>
    public static Int128 Unscaled(string text, int scale)
    {
        ArgumentNullException.ThrowIfNull(text);
        var point = text.IndexOf('.', StringComparison.Ordinal);
        var whole = point < 0 ? text : text[..point];
        var fraction = point < 0 ? "" : text[(point + 1)..];
        if (fraction.Length > scale) { throw new FormatException($"'{text}' has more than {scale} decimals"); }
        return Int128.Parse(whole + fraction + new string('0', scale - fraction.Length), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
    }
}
