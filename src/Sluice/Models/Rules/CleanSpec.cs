namespace Sluice.Models.Rules;

/// <summary>A text normalisation, applied in the declared order before a value is checked and converted.</summary>
public enum TextRule
{
    /// <summary>Removes leading and trailing spaces.</summary>
    Trim,

    /// <summary>Removes control characters (C0 and C1, except the white space that <see cref="CollapseWhitespace"/> handles).</summary>
    StripControl,

    /// <summary>Turns every run of white space (tab, line breaks, no-break space) into one space, and trims.</summary>
    CollapseWhitespace,

    Lower,

    Upper,

    /// <summary><c>title_case</c>: <c>lyon</c> -> <c>Lyon</c>, <c>SAINT-ÉTIENNE</c> -> <c>Saint-Étienne</c>.</summary>
    TitleCase,
}

public enum CleanType
{
    Text,
    Integer,
    Decimal,
    Date,
    Boolean,
}

/// <summary>Which raw rows of a day a clean model reads when several files of that day were loaded.</summary>
public enum SameDateFiles
{
    /// <summary>Only the rows of the file loaded last for the day: a later file for a date replaces the earlier one (a corrected export).</summary>
    Latest,

    /// <summary>The rows of every file of the day.</summary>
    All,
}

/// <summary>A bound on a converted value and the reason code of the rows beyond it.</summary>
public sealed record Bound(string Value, string Reason);

/// <summary>One output column of a clean model: where it comes from, how it is normalised, converted and checked.</summary>
public sealed record CleanColumn
{
    public required string Name { get; init; }

    /// <summary>The raw table's column the value is read from.</summary>
    public required string From { get; init; }

    public CleanType Type { get; init; } = CleanType.Text;

    /// <summary>Line of the column's declaration in the model file.</summary>
    public required int Line { get; init; }

    public IReadOnlyList<TextRule> Clean { get; init; } = [];

    /// <summary>Reason code of rows whose value is empty after cleaning; null: an empty value becomes NULL.</summary>
    public string? RequiredReason { get; init; }

    /// <summary>Reason code of rows whose text does not convert to <see cref="Type"/>.</summary>
    public string InvalidReason { get; init; } = "invalid";

    public int Precision { get; init; } = 18;

    public int Scale { get; init; } = 2;

    /// <summary>For numbers: the thousands separator accepted between digit groups (default ',': "1,234.50").</summary>
    public string Thousands { get; init; } = ",";

    /// <summary>For numbers: the decimal separator (default '.').</summary>
    public string DecimalSeparator { get; init; } = ".";

    /// <summary>For dates: the accepted formats, tried in order (default yyyy-MM-dd, which also takes an ISO instant's date).</summary>
    public IReadOnlyList<string> Formats { get; init; } = ["yyyy-MM-dd"];

    public Bound? Min { get; init; }

    public Bound? Max { get; init; }

    /// <summary>The SQL type of the output column, in the form both engines accept.</summary>
    public string SqlType => Type switch
    {
        CleanType.Integer => "BIGINT",
        CleanType.Decimal => $"DECIMAL({Precision},{Scale})",
        CleanType.Date => "DATE",
        CleanType.Boolean => "BOOLEAN",
        _ => "VARCHAR",
    };
}

/// <summary>Rows with the same key in one day: all but one (the first or the last by row number) are rejected.</summary>
public sealed record KeyRule(IReadOnlyList<string> Columns, bool KeepLast, string Reason);

/// <summary>A value that must exist in another relation (a sale's customer in the customer dimension).</summary>
public sealed record LookupRule(string Column, string Relation, string RelationColumn, string Reason);

/// <summary>A condition over the cleaned columns (SQL, common subset) that rejects the row when true.</summary>
public sealed record CheckRule(string Reason, string When);

/// <summary>
/// A clean model: declared rules over a raw (all-text) table. A run as of D reads the source rows whose
/// <see cref="DateColumn"/> is D, normalises and converts each column, and sends every row that breaks a rule to the
/// quarantine with its file, row, rule (reason code), column and raw values; the other rows become the model's
/// partition D. Rules apply in this order, the first broken one being the row's reason: undecodable text, then each
/// column (required, conversion, bounds) in declared order, then checks, exact duplicates, duplicate keys, lookups.
/// </summary>
public sealed record CleanSpec
{
    /// <summary>The raw table (schema.table) the rules read.</summary>
    public required string Source { get; init; }

    public required IReadOnlyList<CleanColumn> Columns { get; init; }

    public string DateColumn { get; init; } = "_file_date";

    public string FileColumn { get; init; } = "_file";

    public string RowColumn { get; init; } = "_row";

    public string LoadedAtColumn { get; init; } = "_loaded_at";

    public SameDateFiles SameDateFiles { get; init; } = SameDateFiles.Latest;

    /// <summary>Reason code of rows holding text that was not valid UTF-8 (U+FFFD); null to let such rows through.</summary>
    public string? InvalidTextReason { get; init; } = "invalid_encoding";

    /// <summary>Reason code of exact duplicates (same raw values as an earlier row of the day); null keeps duplicates.</summary>
    public string? DuplicateReason { get; init; }

    public KeyRule? Key { get; init; }

    public IReadOnlyList<CheckRule> Checks { get; init; } = [];

    public IReadOnlyList<LookupRule> Lookups { get; init; } = [];

    /// <summary>Output columns that carry where each row came from.</summary>
    public const string FileDateOutput = "file_date";

    public const string SourceFileOutput = "source_file";

    public const string SourceRowOutput = "source_row";
}
