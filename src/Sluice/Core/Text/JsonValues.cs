using System.Buffers;
using System.Text.Json;

namespace Sluice.Core.Text;

/// <summary>
/// The checks every JSON parser of event data makes before it converts a value, so that a hostile value is that
/// record's problem (field and reason) and never an exception: <see cref="Utf8JsonReader.GetString"/> and
/// <see cref="Utf8JsonReader.CopyString(Span{byte})"/> throw on a <c>\u</c> escape that is a lone UTF-16 surrogate,
/// and <see cref="Utf8JsonReader.GetDouble"/> gives infinity for a number out of a double's range (<c>1e309</c>).
/// </summary>
public static class JsonValues
{
    public const string LoneSurrogate = "invalid text: a \\u escape is a lone UTF-16 surrogate (\\ud800-\\udfff without its pair), which is not Unicode";

    public const string InvalidUtf8 = "invalid text: not valid UTF-8";

    /// <summary>Why a number is not a double's value: too large (infinity), or not a number at all.</summary>
    public static string OutOfDoubleRange(string number) => $"number {number} is out of range for a double (finite numbers only)";

    /// <summary>Why a number is not a whole number of 64 bits.</summary>
    public static string OutOfIntegerRange(string number) => $"number {number} is out of range for a whole number (-9223372036854775808 to 9223372036854775807)";

    /// <summary>
    /// True when the text the reader is on (a string value or a property name) cannot be decoded: a <c>\u</c> escape
    /// that is a lone surrogate. Text without escapes is as valid as the UTF-8 it was read from.
    /// </summary>
    public static bool HasInvalidEscape(ref Utf8JsonReader reader)
    {
        if (!reader.ValueIsEscaped) { return false; }
        return reader.HasValueSequence ? HasLoneSurrogate(reader.ValueSequence.ToArray()) : HasLoneSurrogate(reader.ValueSpan);
    }

    /// <summary>Whether raw (still escaped) JSON string content has a <c>\u</c> escape of a lone surrogate; the escapes' syntax is already checked by the reader.</summary>
    public static bool HasLoneSurrogate(ReadOnlySpan<byte> escaped)
    {
        var pendingHigh = false;
        var i = 0;
        while (i < escaped.Length)
        {
            if (escaped[i] != (byte)'\\')
            {
                if (pendingHigh) { return true; }
                i++;
                continue;
            }

            if (i + 1 >= escaped.Length) { return false; }
            if (escaped[i + 1] != (byte)'u' || i + 6 > escaped.Length || !TryHex(escaped.Slice(i + 2, 4), out var unit))
            {
                if (pendingHigh) { return true; }
                i += 2;
                continue;
            }

            var high = unit is >= 0xD800 and <= 0xDBFF;
            var low = unit is >= 0xDC00 and <= 0xDFFF;
            if (pendingHigh != low) { return true; }
            pendingHigh = high;
            i += 6;
        }

        return pendingHigh;
    }

    /// <summary>The double the reader's number is, when it is one a double can hold (not ±infinity).</summary>
    public static bool TryGetFiniteDouble(ref Utf8JsonReader reader, out double value) => reader.TryGetDouble(out value) && double.IsFinite(value);

    /// <summary>
    /// Whether a JSON number may be out of a double's range: only one with an exponent, or more than 308 digits, can
    /// be. Lets a validation pass that does not need the value skip parsing the other numbers.
    /// </summary>
    public static bool MayOverflowDouble(ReadOnlySpan<byte> number) => number.Length > 308 || number.IndexOfAny((byte)'e', (byte)'E') >= 0;

    private static bool TryHex(ReadOnlySpan<byte> four, out int unit)
    {
        unit = 0;
        foreach (var b in four)
        {
            var d = b switch
            {
                >= (byte)'0' and <= (byte)'9' => b - '0',
                >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
                >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
                _ => -1,
            };
            if (d < 0) { return false; }
            unit = (unit << 4) | d;
        }

        return true;
    }
}
