using System.Globalization;
using Sluice.Core.Schema;
using Sluice.Core.Text;

namespace Sluice.Connectors.Files;

/// <summary>
/// How a file type reads one field (docs/recipes/vehicle-files.md, "Field options"): the name it has in the file, when
/// its table column is named otherwise (<c>column:</c>); the format of a timestamp or date (<c>format:</c>, a .NET
/// pattern such as <c>yyyy/MM/dd HH:mm</c>, or <c>epoch_seconds</c> / <c>epoch_millis</c>); and, for a text field,
/// whether any JSON value is taken as its text (<c>coerce: true</c>: the number <c>1776</c> lands as "1776").
/// </summary>
public sealed record FieldRead(string Source, string? Format = null, bool Coerce = false)
{
    public const string EpochSeconds = "epoch_seconds";

    public const string EpochMillis = "epoch_millis";

    /// <summary>The day every pattern is checked with at load: a pattern must give it back from its own text.</summary>
    private static readonly DateTime Probe = new(2031, 12, 29, 13, 45, 0, DateTimeKind.Utc);

    public bool IsEpoch => Format is EpochSeconds or EpochMillis;

    /// <summary>A timestamp's text: ISO-8601 without a format; else the pattern (UTC unless it has an offset) or the count since 1970.</summary>
    public bool TryParseTimestamp(ReadOnlySpan<char> text, out DateTime utc)
    {
        if (Format is null) { return Timestamps.TryParseUtc(text, out utc); }
        if (IsEpoch)
        {
            utc = default;
            return decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var count) && TryEpoch(count, out utc);
        }

        return DateTime.TryParseExact(text, Format, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out utc);
    }

    /// <summary>A count of seconds or milliseconds since 1970-01-01 UTC (a fraction below 100 ns is dropped); false outside .NET's years 1 to 9999.</summary>
    public bool TryEpoch(decimal count, out DateTime utc)
    {
        utc = default;
        // Checked first, so that the multiplication cannot overflow: .NET's range is about 2.5e11 seconds either way.
        if (Math.Abs(count) > 1e15m) { return false; }
        var ticks = decimal.Floor(count * (Format == EpochSeconds ? TimeSpan.TicksPerSecond : TimeSpan.TicksPerMillisecond));
        if (ticks < -DateTime.UnixEpoch.Ticks || ticks > DateTime.MaxValue.Ticks - DateTime.UnixEpoch.Ticks) { return false; }
        utc = DateTime.UnixEpoch.AddTicks((long)ticks);
        return true;
    }

    /// <summary>A date's text: <c>YYYY-MM-DD</c> without a format, else the pattern.</summary>
    public bool TryParseDate(ReadOnlySpan<char> text, out DateOnly date) =>
        Format is null ? Timestamps.TryParseDate(text, out date) : DateOnly.TryParseExact(text, Format, CultureInfo.InvariantCulture, DateTimeStyles.None, out date);

    /// <summary>What a value of the field must look like, for the reason of a record that does not.</summary>
    public string Expected(FieldType type) => (type, Format) switch
    {
        (FieldType.Timestamp, null) => "ISO-8601, for example 2025-11-08T10:30:00Z",
        (FieldType.Date, null) => "YYYY-MM-DD",
        (_, EpochSeconds) => "whole or fractional seconds since 1970-01-01 UTC, for example 1762597800",
        (_, EpochMillis) => "milliseconds since 1970-01-01 UTC, for example 1762597800000",
        (_, null) => type.Name(),
        (_, { } pattern) => $"the format '{pattern}', for example '{Probe.ToString(pattern, CultureInfo.InvariantCulture)}'",
    };

    /// <summary>Why <paramref name="format"/> cannot read a field of <paramref name="type"/>, or null when it can.</summary>
    public static string? FormatProblem(string format, FieldType type)
    {
        if (format is EpochSeconds or EpochMillis)
        {
            return type == FieldType.Timestamp ? null : $"{format} applies to timestamp fields, not {type.Name()}";
        }

        if (type is not (FieldType.Timestamp or FieldType.Date))
        {
            return $"a format applies to timestamp and date fields, not {type.Name()}";
        }

        try
        {
            // The pattern must give back the day it wrote (a time-only or day-less pattern cannot date a record).
            var text = Probe.ToString(format, CultureInfo.InvariantCulture);
            var back = new FieldRead("", format);
            var ok = type == FieldType.Date
                ? back.TryParseDate(text, out var day) && day == DateOnly.FromDateTime(Probe)
                : back.TryParseTimestamp(text, out var time) && time.Date == Probe.Date;
            return ok ? null : $"'{format}' is not a {type.Name()} format with year, month and day (for example \"yyyy/MM/dd HH:mm\", \"MMM d yyyy\", {EpochSeconds} or {EpochMillis})";
        }
        catch (FormatException e)
        {
            return $"'{format}' is not a date and time pattern: {e.Message}";
        }
    }
}
