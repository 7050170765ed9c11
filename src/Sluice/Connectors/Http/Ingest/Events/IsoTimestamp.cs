namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// The common shape of event timestamps, <c>YYYY-MM-DDTHH:MM:SS[.fraction]Z</c>, parsed straight from UTF-8 without
/// allocating: the general parser costs more than the rest of an event's validation. Anything else (offsets, spaces)
/// returns false and goes to <see cref="Core.Text.Timestamps"/>.
/// </summary>
internal static class IsoTimestamp
{
    public static bool TryParseUtc(ReadOnlySpan<byte> s, out DateTime utc)
    {
        utc = default;
        if (s.Length < 20 || s[^1] != (byte)'Z' || s[4] != (byte)'-' || s[7] != (byte)'-' || s[10] != (byte)'T' || s[13] != (byte)':' || s[16] != (byte)':')
        {
            return false;
        }

        if (!Digits(s, 0, 4, out var year) || !Digits(s, 5, 2, out var month) || !Digits(s, 8, 2, out var day) ||
            !Digits(s, 11, 2, out var hour) || !Digits(s, 14, 2, out var minute) || !Digits(s, 17, 2, out var second))
        {
            return false;
        }

        long ticks = 0;
        if (s.Length > 20)
        {
            // A fraction of 1 to 7 digits after the dot.
            if (s[19] != (byte)'.' || s.Length - 21 is < 1 or > 7) { return false; }
            var digits = s.Length - 21;
            if (!Digits(s, 20, digits, out var fraction)) { return false; }
            ticks = fraction;
            for (var i = digits; i < 7; i++) { ticks *= 10; }
        }

        if (month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year == 0 ? 1 : year, month) || hour > 23 || minute > 59 || second > 59 || year == 0)
        {
            return false;
        }

        utc = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).AddTicks(ticks);
        return true;
    }

    private static bool Digits(ReadOnlySpan<byte> s, int start, int count, out int value)
    {
        value = 0;
        for (var i = start; i < start + count; i++)
        {
            var d = s[i] - (byte)'0';
            if ((uint)d > 9) { return false; }
            value = (value * 10) + d;
        }

        return true;
    }
}
