using System.Globalization;
using Sluice.Core.Schema;
using Sluice.Core.Text;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Postgres column types as Sluice field types, and values in Postgres's text format (what pgoutput sends, and what
/// the snapshot reads with <c>::text</c>) as typed column values. One parser for both paths, so a row read from the
/// snapshot and the same row streamed later are identical. The full map is in docs/CDC.md. A type is given here by its
/// base type: a domain is resolved before (<see cref="PgDomains"/>, <see cref="PgSnapshotReader.ColumnsAsync"/>).
/// </summary>
public static class PgTypes
{
    public const uint NumericOid = 1700;

    public static FieldType FieldTypeOf(uint typeOid) => typeOid switch
    {
        16 => FieldType.Boolean,
        20 or 21 or 23 or 26 => FieldType.Integer,
        700 or 701 => FieldType.Double,
        NumericOid => FieldType.Decimal,
        1082 => FieldType.Date,
        1114 or 1184 => FieldType.Timestamp,
        _ => FieldType.String,
    };

    /// <summary>
    /// A column of base type <paramref name="typeOid"/> with type modifier <paramref name="typeModifier"/> (-1: none) as a
    /// field: a <c>numeric(P,S)</c> keeps its precision and scale. A scale Parquet and ClickHouse cannot declare (negative,
    /// or above the precision: allowed since Postgres 15) makes the field an unbounded decimal, which every sink holds.
    /// </summary>
    public static FieldSpec FieldOf(string name, uint typeOid, int typeModifier)
    {
        var type = FieldTypeOf(typeOid);
        if (type != FieldType.Decimal || typeModifier < 4) { return new FieldSpec(name, type, false); }
        var packed = typeModifier - 4;
        var precision = (packed >> 16) & 0xffff;
        var scale = ((packed & 0x7ff) ^ 1024) - 1024;
        return scale >= 0 && scale <= precision ? new FieldSpec(name, type, false, precision, scale) : new FieldSpec(name, type, false);
    }

    /// <summary>Sets the builder's pending value from Postgres text; false (value left null) when the text does not parse.</summary>
    public static bool Set(ColumnBuilder builder, FieldType type, string text)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(text);
        switch (type)
        {
            case FieldType.String:
                ((TypedColumnBuilder<string>)builder).Set(text);
                return true;
            case FieldType.Decimal when IsNumeric(text):
                ((TypedColumnBuilder<string>)builder).Set(text);
                return true;
            case FieldType.Integer when long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l):
                ((ValueColumnBuilder<long>)builder).Set(l);
                return true;
            case FieldType.Double when TryDouble(text, out var d):
                ((ValueColumnBuilder<double>)builder).Set(d);
                return true;
            case FieldType.Boolean when text is "t" or "f" or "true" or "false":
                ((ValueColumnBuilder<bool>)builder).Set(text[0] == 't');
                return true;
            case FieldType.Timestamp when TryTimestamp(text, out var ts):
                ((ValueColumnBuilder<DateTime>)builder).Set(ts);
                return true;
            case FieldType.Timestamp when VerbatimTimestamp(text) is { } verbatim:
                ((ValueColumnBuilder<DateTime>)builder).SetVerbatim(verbatim);
                return true;
            case FieldType.Date when DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day):
                ((ValueColumnBuilder<DateOnly>)builder).Set(day);
                return true;
            case FieldType.Date when IsBeyondDotNet(text):
                ((ValueColumnBuilder<DateOnly>)builder).SetVerbatim(text);
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// The same as <see cref="Set(ColumnBuilder, FieldType, string)"/> from the raw UTF-8 text (what pgoutput sends):
    /// numbers and times parse without a string in between.
    /// </summary>
    public static bool Set(ColumnBuilder builder, FieldType type, ReadOnlySpan<byte> utf8)
    {
        ArgumentNullException.ThrowIfNull(builder);
        switch (type)
        {
            case FieldType.Integer when System.Buffers.Text.Utf8Parser.TryParse(utf8, out long l, out var used) && used == utf8.Length:
                ((ValueColumnBuilder<long>)builder).Set(l);
                return true;
            case FieldType.Double when utf8.Length > 0 && (utf8[0] is (byte)'-' or (>= (byte)'0' and <= (byte)'9')) &&
                                       System.Buffers.Text.Utf8Parser.TryParse(utf8, out double d, out var used) && used == utf8.Length:
                ((ValueColumnBuilder<double>)builder).Set(d);
                return true;
            case FieldType.Boolean when utf8.Length == 1 && utf8[0] is (byte)'t' or (byte)'f':
                ((ValueColumnBuilder<bool>)builder).Set(utf8[0] == (byte)'t');
                return true;
            case FieldType.Timestamp when utf8.Length is > 22 and <= 32 && utf8[^3] == (byte)'+' && utf8[^2] == (byte)'0' && utf8[^1] == (byte)'0':
            {
                // UTC as the server writes it ("+00"): what is left has no offset, which the ISO reader takes as UTC.
                if (Timestamps.TryParseUtc(utf8[..^3], out var fast))
                {
                    ((ValueColumnBuilder<DateTime>)builder).Set(fast);
                    return true;
                }

                // A year after 9999 ("10000-01-01 00:00:00+00"): the general path keeps its text.
                return Set(builder, type, System.Text.Encoding.UTF8.GetString(utf8));
            }

            default:
                return Set(builder, type, System.Text.Encoding.UTF8.GetString(utf8));
        }
    }

    /// <summary>
    /// Postgres's text of a numeric: an optional minus, digits, optionally a point and digits (never an exponent), or
    /// <c>NaN</c>, <c>Infinity</c>, <c>-Infinity</c>. Kept as it is: every digit and the scale, which a double would lose.
    /// </summary>
    public static bool IsNumeric(ReadOnlySpan<char> text)
    {
        if (text is "NaN" or "Infinity" or "-Infinity") { return true; }
        var at = text.StartsWith('-') ? 1 : 0;
        var digits = 0;
        while (at < text.Length && char.IsAsciiDigit(text[at])) { at++; digits++; }
        if (at < text.Length && text[at] == '.')
        {
            at++;
            var fraction = 0;
            while (at < text.Length && char.IsAsciiDigit(text[at])) { at++; fraction++; }
            if (fraction == 0) { return false; }
        }

        return digits > 0 && at == text.Length;
    }

    /// <summary>
    /// A date or timestamp in Postgres's ISO text that .NET cannot hold: <c>infinity</c>, <c>-infinity</c>, a year after
    /// 9999 (<c>10000-01-01</c>) or before Christ (<c>0044-03-15 BC</c>).
    /// </summary>
    public static bool IsBeyondDotNet(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text is "infinity" or "-infinity") { return true; }
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        var year = dash < 0 ? 0 : dash;
        return year >= 4 && text.AsSpan(0, year).ContainsAnyExceptInRange('0', '9') == false && text.Length >= year + 6 &&
               (year > 4 || text.EndsWith(" BC", StringComparison.Ordinal));
    }

    /// <summary>
    /// The text a timestamp beyond .NET is carried as: Postgres's own, with <c>+00</c> added to a <c>timestamp</c>
    /// without time zone (read as UTC, like every other value of it), so the text names one instant wherever it is cast.
    /// </summary>
    private static string? VerbatimTimestamp(string text)
    {
        if (!IsBeyondDotNet(text)) { return null; }
        if (text is "infinity" or "-infinity") { return text; }
        var bc = text.EndsWith(" BC", StringComparison.Ordinal);
        var instant = bc ? text[..^3] : text;
        var time = instant.IndexOf(' ', StringComparison.Ordinal);
        if (time < 0 || instant.AsSpan(time).IndexOfAny('+', '-') >= 0) { return text; }
        return instant + "+00" + (bc ? " BC" : "");
    }

    private static bool TryDouble(string text, out double value)
    {
        switch (text)
        {
            case "NaN": value = double.NaN; return true;
            case "Infinity": value = double.PositiveInfinity; return true;
            case "-Infinity": value = double.NegativeInfinity; return true;
            default: return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
        }
    }

    /// <summary>
    /// <c>2026-01-08 14:21:52.123456+00</c> (timestamptz in a UTC session) or without offset (timestamp, read as UTC).
    /// Other offsets are honoured.
    /// </summary>
    public static bool TryTimestamp(string text, out DateTime utc)
    {
        ArgumentNullException.ThrowIfNull(text);
        // The common case in a UTC session: "+00" at the end.
        if (text.EndsWith("+00", StringComparison.Ordinal) &&
            DateTime.TryParseExact(text.AsSpan(0, text.Length - 3), "yyyy-MM-dd HH:mm:ss.FFFFFF", CultureInfo.InvariantCulture, DateTimeStyles.None, out var fast))
        {
            utc = DateTime.SpecifyKind(fast, DateTimeKind.Utc);
            return true;
        }

        var span = text.AsSpan();
        var offset = TimeSpan.Zero;
        var sign = span.Length > 19 ? span[19..].IndexOfAny('+', '-') : -1;
        if (sign >= 0)
        {
            var at = 19 + sign;
            var zone = span[(at + 1)..];
            var parts = zone.ToString().Split(':');
            // Postgres offsets are within ±15:59; larger numbers would make TimeSpan throw.
            if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var hours) || hours > 15)
            {
                utc = default;
                return false;
            }

            var minutes = parts.Length > 1 && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var m) && m <= 59 ? m : 0;
            offset = new TimeSpan(hours, minutes, 0);
            if (span[at] == '-') { offset = -offset; }
            span = span[..at];
        }

        if (DateTime.TryParseExact(span, "yyyy-MM-dd HH:mm:ss.FFFFFF", CultureInfo.InvariantCulture, DateTimeStyles.None, out var local))
        {
            // In ticks: an offset that moves the instant past year 9999 or before year 1 would make the subtraction throw.
            var ticks = local.Ticks - offset.Ticks;
            if (ticks < DateTime.MinValue.Ticks || ticks > DateTime.MaxValue.Ticks)
            {
                utc = default;
                return false;
            }

            utc = new DateTime(ticks, DateTimeKind.Utc);
            return true;
        }

        utc = default;
        return false;
    }
}
