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

public enum HeaderMatch
{
    /// <summary>Columns are found by name, in any order; extra columns are ignored; a missing required one fails the file.</summary>
    ByName,

    /// <summary>The header must name exactly the declared fields, in order: a reordered, renamed or missing header fails the file.</summary>
    Exact,
}

public enum InvalidTextPolicy
{
    /// <summary>Bytes that are not UTF-8 fail the whole file.</summary>
    Fail,

    /// <summary>Each invalid byte sequence is read as U+FFFD, so the row still lands and rules downstream decide (for example reject it).</summary>
    Replace,
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

    /// <summary>The timestamp field whose UTC date is the record's partition (<c>date=YYYY-MM-DD</c>); empty when <see cref="NameDate"/> partitions instead.</summary>
    public required string EventTime { get; init; }

    /// <summary>
    /// When set (for example <c>yyyyMMdd</c>), the file's date is read from its name (<c>sales_20240105.csv</c>): every
    /// record is partitioned by it in <see cref="FileDateColumn"/>, and files are ingested in the order of that date.
    /// </summary>
    public string? NameDate { get; init; }

    /// <summary>Among files of the same name date, lower loads first (customers before sales). Default 0.</summary>
    public int LoadOrder { get; init; }

    /// <summary>Adds the lineage columns <c>_file</c> (name as received), <c>_row</c> (1-based data row) and <c>_loaded_at</c> (UTC).</summary>
    public bool Lineage { get; init; }

    /// <summary>For <see cref="FileFormat.Csv"/>: how the header is checked (default by name).</summary>
    public HeaderMatch Header { get; init; } = HeaderMatch.ByName;

    /// <summary>For <see cref="FileFormat.Csv"/>: what bytes that are not UTF-8 do (default: fail the file).</summary>
    public InvalidTextPolicy InvalidText { get; init; } = InvalidTextPolicy.Fail;

    /// <summary>The table's columns parsed from each record (named as in the table: see <see cref="Reads"/> for their names in the file).</summary>
    public required IReadOnlyList<FieldSpec> Fields { get; init; }

    /// <summary>Per field, how it is read (its name in the file, a format, coerce); null when every field is read as named, in the default formats.</summary>
    public IReadOnlyList<FieldRead>? Reads { get; init; }

    /// <summary>How field <paramref name="index"/> is read.</summary>
    public FieldRead ReadOf(int index) => Reads?[index] ?? new FieldRead(Fields[index].Name);

    /// <summary>
    /// The partition column's name when the type sets one (<c>partition_column:</c>); null for the default: <see cref="PartitionKey"/>,
    /// or <see cref="FileDateColumn"/> for types dated by their file name. Existing tables keep the default's name.
    /// </summary>
    public string? PartitionName { get; init; }

    /// <summary>The lake table's partition column.</summary>
    public string PartitionColumn => PartitionName ?? (NameDate is null ? PartitionKey : FileDateColumn);

    public InvalidRowPolicy OnInvalid { get; init; } = InvalidRowPolicy.RejectFile;

    /// <summary>With <see cref="InvalidRowPolicy.QuarantineRows"/>: more bad records than this fail the whole file (default 10,000).</summary>
    public int MaxBadRows { get; init; } = 10_000;

    /// <summary>For <see cref="FileFormat.Csv"/>: the delimiter (default <c>,</c>).</summary>
    public char Delimiter { get; init; } = ',';

    /// <summary>Where the definition came from: <c>recipe</c> (shipped YAML) or <c>cli</c> (<c>sluice filetypes add</c>).</summary>
    public string Origin { get; init; } = "recipe";

    public const string PartitionKey = "date";

    /// <summary>The partition column of types whose date comes from the file name.</summary>
    public const string FileDateColumn = "_file_date";

    public static readonly IReadOnlyList<FieldSpec> LineageFields =
        [new("_file", FieldType.String, true), new("_row", FieldType.Integer, true), new("_loaded_at", FieldType.Timestamp, true)];

    /// <summary>The columns of the lake table: the fields, then the lineage columns when <see cref="Lineage"/> is on.</summary>
    public IReadOnlyList<FieldSpec> Columns => Lineage ? [.. Fields, .. LineageFields] : Fields;

    public LakeTable LakeTable()
    {
        var dot = Table.IndexOf('.', StringComparison.Ordinal);
        return new LakeTable(Table[..dot], Table[(dot + 1)..], PartitionColumn, FieldType.Date, Columns);
    }

    /// <summary>The date in a file's name (the first run of digits as long as <see cref="NameDate"/> that parses with it).</summary>
    public bool TryDateFromName(string fileName, out DateOnly date)
    {
        date = default;
        if (NameDate is null)
        {
            return false;
        }

        var stem = Path.GetFileNameWithoutExtension(fileName);
        for (var i = 0; i + NameDate.Length <= stem.Length; i++)
        {
            if ((i == 0 || !char.IsAsciiDigit(stem[i - 1])) &&
                DateOnly.TryParseExact(stem.AsSpan(i, NameDate.Length), NameDate, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out date) &&
                (i + NameDate.Length == stem.Length || !char.IsAsciiDigit(stem[i + NameDate.Length])))
            {
                return true;
            }
        }

        return false;
    }

    public bool Matches(string fileName) => GlobRegex(Pattern).IsMatch(fileName);

    internal static Regex GlobRegex(string pattern) =>
        new("^" + Regex.Escape(pattern).Replace("\\*", ".*", StringComparison.Ordinal).Replace("\\?", ".", StringComparison.Ordinal) + "$",
            RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
}
