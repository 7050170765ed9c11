using System.Text.RegularExpressions;
using Sluice.Core.Config;

namespace Sluice.Jobs.DailySummary;

/// <summary>
/// Options of a <c>daily_summary</c> job: per key and event day, the values of the day's latest record.
/// The source must be a lake table partitioned by the UTC date of <see cref="Time"/> (as file-type tables are).
/// </summary>
public sealed partial class DailySummaryOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly DailySummaryOptions Default = OptionDefaults.Of<DailySummaryOptions>();

    /// <summary>Source lake table, <c>zone.name</c>.</summary>
    public required string Source { get; init; }

    /// <summary>Key columns (one summary row per key and day).</summary>
    public required IReadOnlyList<string> GroupBy { get; init; }

    /// <summary>The event-time column; its UTC date is the summary's day.</summary>
    public required string Time { get; init; }

    /// <summary>Output column to source column, taken from the day's latest record (ties broken by these values, descending).</summary>
    public required IReadOnlyList<(string Output, string Source)> Latest { get; init; }

    /// <summary>Target lake table, <c>zone.name</c>, partitioned by <see cref="DayColumn"/>.</summary>
    public required string Target { get; init; }

    /// <summary>Name of the day column.</summary>
    public string DayColumn { get; init; } = "day";

    /// <summary>Days before the as-of date that every run recomputes.</summary>
    public int LookbackDays { get; init; } = 2;

    public static DailySummaryOptions Parse(ConfigMap map)
    {
        var latest = new List<(string, string)>();
        var latestMap = map.Map("latest", required: true, doc: "Output column to source column, taken from the day's latest record (ties broken by these values, descending).");
        if (latestMap is not null)
        {
            foreach (var key in latestMap.Keys.ToList())
            {
                latest.Add((key, latestMap.String(key) ?? ""));
            }

            latestMap.Done();
            if (latest.Count == 0) { map.Error("latest", "name at least one output column and its source column"); }
        }

        var options = new DailySummaryOptions
        {
            Source = map.RequiredString("source", doc: "Source lake table, `zone.name`."),
            GroupBy = map.StringList("group_by", doc: "Key columns (one summary row per key and day)."),
            Time = map.RequiredString("time", doc: "The event-time column; its UTC date is the summary's day."),
            Latest = latest,
            Target = map.RequiredString("target", doc: "Target lake table, `zone.name`, partitioned by `day_column`."),
            DayColumn = map.String("day_column", Default.DayColumn, doc: "Name of the day column.") ?? Default.DayColumn,
            LookbackDays = map.Int("lookback_days", Default.LookbackDays, 0, 366, doc: "Days before the as-of date that every run recomputes."),
        };

        if (options.GroupBy.Count == 0) { map.Error("group_by", "missing required field (one or more key columns)"); }
        foreach (var (key, value) in new[] { ("source", options.Source), ("target", options.Target) })
        {
            if (value.Length > 0 && !TableName().IsMatch(value)) { map.Error(key, $"'{value}' must be zone.name (letters, digits, '_')"); }
        }

        foreach (var name in options.GroupBy.Append(options.Time).Append(options.DayColumn).Concat(latest.SelectMany(l => new[] { l.Item1, l.Item2 })))
        {
            if (name.Length > 0 && !Column().IsMatch(name)) { map.Error("latest", $"'{name}' is not a plain column name"); }
        }

        return options;
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*\\.[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex TableName();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex Column();
}
