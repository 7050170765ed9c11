using System.Globalization;
using System.Xml;

namespace Sluice.Core.Config;

public static class Durations
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = default;
        text = text.Trim();
        if (text.StartsWith('P'))
        {
            try { value = XmlConvert.ToTimeSpan(text); return value >= TimeSpan.Zero; }
            catch (FormatException) { return false; }
        }

        (string suffix, double unitMs)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];
        foreach (var (suffix, unit) in units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal) &&
                double.TryParse(text[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0)
            {
                value = TimeSpan.FromMilliseconds(n * unit);
                return true;
            }
        }

        return false;
    }
}
