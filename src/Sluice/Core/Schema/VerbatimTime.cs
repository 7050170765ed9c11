using System.Globalization;

namespace Sluice.Core.Schema;

/// <summary>
/// A date or time carried as Postgres's ISO text because .NET cannot hold it (<see cref="ColumnBatch.Verbatim"/>), as a
/// count since the Unix epoch, for stores whose own range is wider than .NET's (Parquet: days in an Int32, milliseconds
/// in an Int64). Years after 9999 and BC (<c>0044-03-15 BC</c> is astronomical year -43, proleptic Gregorian, as Postgres
/// counts) convert; <c>infinity</c> does not.
/// </summary>
public static class VerbatimTime
{
    /// <summary><c>10000-01-01</c>, <c>0044-03-15 BC</c> as days since 1970-01-01.</summary>
    public static bool TryEpochDays(string text, out long days)
    {
        ArgumentNullException.ThrowIfNull(text);
        days = 0;
        var (body, bc) = text.EndsWith(" BC", StringComparison.Ordinal) ? (text[..^3], true) : (text, false);
        var space = body.IndexOf(' ', StringComparison.Ordinal);
        return TryDays(space < 0 ? body : body[..space], bc, out days);
    }

    /// <summary><c>10000-01-01 00:00:00+00</c>, <c>0044-03-15 12:00:00.5+00 BC</c> as UTC milliseconds since the epoch (rounded down).</summary>
    public static bool TryEpochMillis(string text, out long millis)
    {
        millis = 0;
        if (!TryDaysAndTime(text, out var days, out var time)) { return false; }
        millis = days * 86_400_000L + (long)Math.Floor(time.TotalMilliseconds);
        return true;
    }

    /// <summary>
    /// The same as UTC microseconds since the epoch (Postgres's own resolution, so exact); false also when the count
    /// passes a 64-bit integer (the last 30 years of Postgres's range, after 294247).
    /// </summary>
    public static bool TryEpochMicros(string text, out long micros)
    {
        micros = 0;
        if (!TryDaysAndTime(text, out var days, out var time)) { return false; }
        try
        {
            micros = checked(days * 86_400_000_000L + time.Ticks / 10);
            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }

    private static bool TryDaysAndTime(string text, out long days, out TimeSpan time)
    {
        ArgumentNullException.ThrowIfNull(text);
        (days, time) = (0, TimeSpan.Zero);
        var (body, bc) = text.EndsWith(" BC", StringComparison.Ordinal) ? (text[..^3], true) : (text, false);
        var space = body.IndexOf(' ', StringComparison.Ordinal);
        // Only UTC ("+00", how a UTC session writes every timestamptz, and how a timestamp is carried): no offset arithmetic.
        if (space < 0 || !body.EndsWith("+00", StringComparison.Ordinal) || !TryDays(body[..space], bc, out days)) { return false; }
        return TimeSpan.TryParseExact(body[(space + 1)..^3], @"hh\:mm\:ss\.FFFFFFF", CultureInfo.InvariantCulture, out time) ||
               TimeSpan.TryParseExact(body[(space + 1)..^3], @"hh\:mm\:ss", CultureInfo.InvariantCulture, out time);
    }

    private static bool TryDays(string date, bool bc, out long days)
    {
        days = 0;
        var parts = date.Split('-');
        if (parts.Length != 3 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var year) ||
            !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var month) || month is < 1 or > 12 ||
            !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var day) || day is < 1 or > 31 || year > 10_000_000)
        {
            return false;
        }

        days = DaysFromCivil(bc ? 1 - year : year, month, day);
        return true;
    }

    /// <summary>Days since 1970-01-01 of a proleptic Gregorian date with an astronomical year (H. Hinnant's days_from_civil).</summary>
    private static long DaysFromCivil(long year, int month, int day)
    {
        year -= month <= 2 ? 1 : 0;
        var era = (year >= 0 ? year : year - 399) / 400;
        var yearOfEra = year - era * 400;
        var dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
        var dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;
        return era * 146_097 + dayOfEra - 719_468;
    }
}
