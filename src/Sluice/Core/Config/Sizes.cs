using System.Globalization;

namespace Sluice.Core.Config;

/// <summary>Byte sizes written as <c>512</c>, <c>64KB</c>, <c>16MB</c>, <c>2GB</c> (powers of 1024; <c>KiB</c>, <c>MiB</c>, <c>GiB</c> too).</summary>
public static class Sizes
{
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        text = text.Trim();
        (string Suffix, long Unit)[] units = [("KiB", 1L << 10), ("MiB", 1L << 20), ("GiB", 1L << 30), ("KB", 1L << 10), ("MB", 1L << 20), ("GB", 1L << 30), ("B", 1)];
        foreach (var (suffix, unit) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                if (double.TryParse(text[..^suffix.Length].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0)
                {
                    bytes = (long)(n * unit);
                    return true;
                }

                return false;
            }
        }

        return long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out bytes) && bytes >= 0;
    }

    /// <summary>Reads a size option; problems are reported on the map with file, line and key.</summary>
    public static long Size(this ConfigMap map, string key, long fallback, long min = 0, long max = long.MaxValue, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        map.Declare(key, "size (512KB, 16MB, 2GB)", Format(fallback), doc, max == long.MaxValue ? $"at least {Format(min)}" : $"{Format(min)} to {Format(max)}");
        var text = map.String(key);
        if (text is null) { return fallback; }
        if (!TryParse(text, out var value))
        {
            map.Error(key, $"expected a size such as 512KB, 16MB or 2GB, got '{text}'");
            return fallback;
        }

        if (value < min || value > max)
        {
            map.Error(key, $"must be between {Format(min)} and {Format(max)}, got {Format(value)}");
            return fallback;
        }

        return value;
    }

    public static string Format(long bytes) => bytes switch
    {
        >= 1L << 30 when bytes % (1L << 30) == 0 => $"{bytes >> 30}GB",
        >= 1L << 20 when bytes % (1L << 20) == 0 => $"{bytes >> 20}MB",
        >= 1L << 10 when bytes % (1L << 10) == 0 => $"{bytes >> 10}KB",
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes} bytes"),
    };
}
