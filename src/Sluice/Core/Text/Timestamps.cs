using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace Sluice.Core.Text;

/// <summary>
/// ISO-8601 instants as found in event data: <c>2025-11-08T10:30:00Z</c>, with fractions and offsets, or with no
/// offset at all (then read as UTC; the machine's time zone never decides what an event time means).
/// </summary>
public static class Timestamps
{
    public static bool TryParseUtc(ReadOnlySpan<byte> utf8, out DateTime utc)
    {
        // The fast path handles the common 'Z' form without allocating; anything else goes through the general parser.
        if (utf8.Length == 20 && utf8[19] == (byte)'Z' && utf8[10] == (byte)'T' &&
            Utf8Parser.TryParse(utf8[..19], out DateTime fast, out var used, 'O') && used == 19)
        {
            utc = DateTime.SpecifyKind(fast, DateTimeKind.Utc);
            return true;
        }

        if (utf8.Length is < 10 or > 64)
        {
            utc = default;
            return false;
        }

        Span<char> chars = stackalloc char[utf8.Length];
        var n = Encoding.UTF8.GetChars(utf8, chars);
        return TryParseUtc(chars[..n], out utc);
    }

    public static bool TryParseUtc(ReadOnlySpan<char> text, out DateTime utc)
    {
        text = text.Trim();
        if (text.Length >= 10 && text[4] == '-' &&
            DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value))
        {
            utc = value.UtcDateTime;
            return true;
        }

        utc = default;
        return false;
    }

    public static bool TryParseDate(ReadOnlySpan<char> text, out DateOnly date) =>
        DateOnly.TryParseExact(text.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out date);

    /// <summary>A date (<c>2025-11-08</c>, its start in UTC) or an instant.</summary>
    public static bool TryParseDateOrInstant(string text, out DateTimeOffset value)
    {
        if (TryParseDate(text, out var d))
        {
            value = new DateTimeOffset(d.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
            return true;
        }

        if (TryParseUtc(text.AsSpan(), out var t))
        {
            value = new DateTimeOffset(t, TimeSpan.Zero);
            return true;
        }

        value = default;
        return false;
    }

    public static string Format(DateTime utc) => utc.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);
}
