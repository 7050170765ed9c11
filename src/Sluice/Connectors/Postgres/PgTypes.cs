using System.Globalization;
using Sluice.Core.Schema;
using Sluice.Core.Text;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Postgres column types as Sluice field types, and values in Postgres's text format (what pgoutput sends, and what
/// the snapshot reads with <c>::text</c>) as typed column values. One parser for both paths, so a row read from the
/// snapshot and the same row streamed later are identical.
/// </summary>
public static class PgTypes
{
    public static FieldType FieldTypeOf(uint typeOid) => typeOid switch
    {
        16 => FieldType.Boolean,
        20 or 21 or 23 or 26 => FieldType.Integer,
        700 or 701 or 1700 => FieldType.Double,
        1082 => FieldType.Date,
        1114 or 1184 => FieldType.Timestamp,
        _ => FieldType.String,
    };

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
            case FieldType.Date when DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day):
                ((ValueColumnBuilder<DateOnly>)builder).Set(day);
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

                return false;
            }

            default:
                return Set(builder, type, System.Text.Encoding.UTF8.GetString(utf8));
        }
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
