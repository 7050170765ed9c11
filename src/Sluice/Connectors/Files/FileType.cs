using System.Text.RegularExpressions;
using Sluice.Core.Schema;
using Sluice.Lake;

namespace Sluice.Connectors.Files;

public enum FileFormat
{
    /// <summary>One JSON document whose root object holds the records in an array under <see cref="FileType.RootKey"/> (the seed's layout), or a bare array when no key is set.</summary>
    Json,

    /// <summary>One JSON object per line.</summary>
    Ndjson,

    /// <summary>Delimited text with a header line naming the fields.</summary>
    Csv,
}

public enum InvalidRowPolicy
{
    /// <summary>Any invalid record fails the whole file: nothing of it lands, it moves to <c>failed/</c>.</summary>
    RejectFile,

    /// <summary>Valid records land; invalid ones go to the dead-letter store with reason and position.</summary>
    QuarantineRows,
}

/// <summary>
/// A kind of file the drop folder accepts (the seed's <c>table_metadata</c> row, its "v2"): which names it matches, how it
/// is read, which fields it has, which field is the event time, and the lake table its records land in.
/// </summary>
public sealed record FileType
{
    public required string Name { get; init; }

    /// <summary>File-name glob, <c>*</c> and <c>?</c>, matched against the name only (for example <c>vehicles_events_*.json</c>).</summary>
    public required string Pattern { get; init; }

    public FileFormat Format { get; init; } = FileFormat.Json;

    /// <summary>For <see cref="FileFormat.Json"/>: the root object's key holding the record array; null for a bare array.</summary>
    public string? RootKey { get; init; }

    /// <summary>Target lake table as <c>zone.name</c> (for example <c>raw_data.vehicle_events</c>).</summary>
    public required string Table { get; init; }

    /// <summary>The timestamp field whose UTC date is the record's partition (<c>date=YYYY-MM-DD</c>).</summary>
    public required string EventTime { get; init; }

    public required IReadOnlyList<FieldSpec> Fields { get; init; }

    public InvalidRowPolicy OnInvalid { get; init; } = InvalidRowPolicy.RejectFile;

    /// <summary>With <see cref="InvalidRowPolicy.QuarantineRows"/>: more bad records than this fail the whole file (default 10,000).</summary>
    public int MaxBadRows { get; init; } = 10_000;

    /// <summary>For <see cref="FileFormat.Csv"/>: the delimiter (default <c>,</c>).</summary>
    public char Delimiter { get; init; } = ',';

    /// <summary>Where the definition came from: <c>recipe</c> (shipped YAML) or <c>cli</c> (<c>sluice filetypes add</c>).</summary>
    public string Origin { get; init; } = "recipe";

    public const string PartitionKey = "date";

    public LakeTable LakeTable()
    {
        var dot = Table.IndexOf('.', StringComparison.Ordinal);
        return new LakeTable(Table[..dot], Table[(dot + 1)..], PartitionKey, FieldType.Date, Fields);
    }

    public bool Matches(string fileName) => GlobRegex(Pattern).IsMatch(fileName);

    internal static Regex GlobRegex(string pattern) =>
        new("^" + Regex.Escape(pattern).Replace("\\*", ".*", StringComparison.Ordinal).Replace("\\?", ".", StringComparison.Ordinal) + "$",
            RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
}
