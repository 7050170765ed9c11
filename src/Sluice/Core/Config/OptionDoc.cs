using System.Globalization;

namespace Sluice.Core.Config;

/// <summary>
/// One option as its component declares it where it reads it (<see cref="ConfigMap"/>'s getters): the key, its type,
/// its default, the unit its name carries, what values it takes, and what it does. The reference pages
/// (<c>docs/reference/</c>) are made of these, so a default or a range is written once, in the getter's call.
/// </summary>
public sealed record OptionDoc(string Key, string Type, string? Default, string? Allowed, bool Required, string? Doc)
{
    /// <summary>The unit a key's name carries (<c>group_max_mb</c>: MiB), so the name and the reference never disagree.</summary>
    public string Unit => Key switch
    {
        _ when Key.EndsWith("_mb", StringComparison.Ordinal) => "MiB",
        _ when Key.EndsWith("_kb", StringComparison.Ordinal) => "KiB",
        _ when Key.EndsWith("_ms", StringComparison.Ordinal) => "ms",
        _ when Key.EndsWith("_seconds", StringComparison.Ordinal) => "s",
        _ when Key.EndsWith("_bytes", StringComparison.Ordinal) => "bytes",
        _ => "",
    };

    public static string Format(object? value) => value switch
    {
        null => null!,
        string s => s,
        bool b => b ? "true" : "false",
        TimeSpan t => FormatDuration(t),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>A duration as a recipe writes it (<c>500ms</c>, <c>2s</c>, <c>5m</c>, <c>1h</c>, <c>30d</c>).</summary>
    public static string FormatDuration(TimeSpan t) =>
        t == TimeSpan.Zero ? "0s"
        : t.Ticks % TimeSpan.TicksPerDay == 0 ? $"{t.Days}d"
        : t.Ticks % TimeSpan.TicksPerHour == 0 ? $"{(long)t.TotalHours}h"
        : t.Ticks % TimeSpan.TicksPerMinute == 0 ? $"{(long)t.TotalMinutes}m"
        : t.Ticks % TimeSpan.TicksPerSecond == 0 ? $"{(long)t.TotalSeconds}s"
        : $"{t.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)}ms";
}

/// <summary>The options a component read while being described (<see cref="ConfigMap.Describe"/>), in the order it read them.</summary>
public sealed class OptionLog
{
    private readonly List<OptionDoc> _options = [];

    public IReadOnlyList<OptionDoc> Options => _options;

    /// <summary>Keys looked at (<see cref="ConfigMap.Has"/>) that no getter declared: an option read only in a branch the description did not take.</summary>
    public IEnumerable<string> Undeclared => _seen.Where(k => _options.All(o => o.Key != k));

    private readonly List<string> _seen = [];

    internal void Seen(string key)
    {
        if (!_seen.Contains(key)) { _seen.Add(key); }
    }

    /// <summary>The first documented declaration of a key wins: helpers declare a key and then read it with a plain getter.</summary>
    internal void Add(OptionDoc option)
    {
        var i = _options.FindIndex(o => o.Key == option.Key);
        if (i < 0) { _options.Add(option); }
        else if (_options[i].Doc is null && option.Doc is not null) { _options[i] = option; }
    }
}
