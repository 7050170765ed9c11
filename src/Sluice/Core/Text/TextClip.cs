namespace Sluice.Core.Text;

/// <summary>
/// Shortens a value quoted in a message. Never between the two halves of a surrogate pair: a message that holds half
/// an emoji is not Unicode, and the JSON writer that sends it back to the client throws on it.
/// </summary>
public static class TextClip
{
    /// <summary><paramref name="text"/> itself when it has at most <paramref name="max"/> chars, else its start and "...".</summary>
    public static string Clip(string text, int max)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length <= max) { return text; }
        var cut = Math.Max(0, max - 3);
        if (cut > 0 && char.IsHighSurrogate(text[cut - 1])) { cut--; }
        return string.Concat(text.AsSpan(0, cut), "...");
    }
}
