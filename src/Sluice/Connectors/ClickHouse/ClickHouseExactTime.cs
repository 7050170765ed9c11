using Sluice.Core.Schema;

namespace Sluice.Connectors.ClickHouse;

/// <summary>
/// How a mirror stores dates and times exactly on ClickHouse 18.16, which has no DateTime64 and whose DateTime (whole
/// seconds, 1970 to 2106) and Date (1970 to 2149) would lose Postgres's microseconds and anything outside those years:
/// a timestamp is an Int64 of UTC microseconds since 1970-01-01 (what DateTime64(6) holds, and Debezium's MicroTimestamp),
/// a date an Int32 of days since then. <c>infinity</c> and <c>-infinity</c> are the type's largest and smallest value,
/// as Debezium writes them; no real value reaches those (docs/CDC.md, "ClickHouse mirror columns").
/// </summary>
internal static class ClickHouseExactTime
{
    /// <summary>The column a mirror stores <paramref name="type"/> in exactly, or null when the changes mode's type is already exact.</summary>
    public static string? TypeOf(FieldType type) => type switch
    {
        FieldType.Timestamp => "Int64",
        FieldType.Date => "Int32",
        _ => null,
    };

    /// <summary>A timestamp as microseconds: the typed value, else its Postgres text (years after 9999, BC, infinities).</summary>
    public static bool TryMicros(DateTime? value, string? verbatim, out long micros)
    {
        micros = 0;
        if (value is { } t)
        {
            var utc = t.Kind == DateTimeKind.Local ? t.ToUniversalTime() : t;
            micros = (utc.Ticks - DateTime.UnixEpoch.Ticks) / 10;
            return true;
        }

        switch (verbatim)
        {
            case "infinity": micros = long.MaxValue; return true;
            case "-infinity": micros = long.MinValue; return true;
            case null: return false;
            // A count past Int64 (after the year 294247) would meet the infinity sentinel: it is refused instead.
            default: return VerbatimTime.TryEpochMicros(verbatim, out micros) && micros is not (long.MaxValue or long.MinValue);
        }
    }

    /// <summary>A date as days since 1970-01-01, likewise.</summary>
    public static bool TryDays(DateOnly? value, string? verbatim, out int days)
    {
        days = 0;
        if (value is { } d)
        {
            days = d.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;
            return true;
        }

        switch (verbatim)
        {
            case "infinity": days = int.MaxValue; return true;
            case "-infinity": days = int.MinValue; return true;
            case null: return false;
            // Postgres's dates end in 5874897: every one fits, but a text that is not one is refused.
            default:
                if (!VerbatimTime.TryEpochDays(verbatim, out var count) || count is <= int.MinValue or >= int.MaxValue) { return false; }
                days = (int)count;
                return true;
        }
    }
}
