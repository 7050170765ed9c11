namespace Sluice.Models;

public enum ModelTestKind
{
    Unique,
    NotNull,
    AcceptedValues,
    Relationships,
    RowCount,
}

/// <summary>
/// One declared assertion about a model's table: <c>unique</c> (a column or a combination), <c>not_null</c>,
/// <c>accepted_values</c>, <c>relationships</c> (every value exists in another relation's column) and <c>row_count</c>
/// (between <see cref="Min"/> and <see cref="Max"/>). <see cref="Where"/> limits the rows checked.
/// </summary>
public sealed record ModelTest(ModelTestKind Kind, IReadOnlyList<string> Columns, int Line)
{
    public IReadOnlyList<string> Values { get; init; } = [];

    /// <summary>For relationships: <c>schema.table</c> and column of the referenced relation.</summary>
    public string? ToRelation { get; init; }

    public string? ToColumn { get; init; }

    public long? Min { get; init; }

    public long? Max { get; init; }

    public string? Where { get; init; }

    public string Describe() => Kind switch
    {
        ModelTestKind.Unique => $"unique({string.Join(", ", Columns)})",
        ModelTestKind.NotNull => $"not_null({string.Join(", ", Columns)})",
        ModelTestKind.AcceptedValues => $"accepted_values({Columns[0]}: {string.Join(", ", Values)})",
        ModelTestKind.Relationships => $"relationships({Columns[0]} -> {ToRelation}.{ToColumn})",
        ModelTestKind.RowCount => $"row_count({(Min is null ? "" : $">= {Min}")}{(Min is not null && Max is not null ? ", " : "")}{(Max is null ? "" : $"<= {Max}")})",
        _ => Kind.ToString(),
    } + (Where is null ? "" : $" where {Where}");
}

/// <summary>The result of one test: how many rows offend, and a few of them.</summary>
public sealed record ModelTestOutcome(ModelDefinition Model, ModelTest Test, long Failures, Lake.QueryResult Examples, string? Error = null)
{
    public bool Passed => Error is null && Failures == 0;
}
