namespace Sluice.Connectors.Files;

/// <summary>Why one record was rejected, and where: 1-based line and record index in the file, and the field when one is to blame.</summary>
public sealed record RecordIssue(long Record, long Line, string? Field, string Message)
{
    public string Position(string fileName) =>
        $"{fileName}: line {Line}, record {Record}" + (Field is null ? "" : $", field '{Field}'");
}

/// <summary>A field-level problem found while parsing one record.</summary>
internal readonly record struct FieldProblem(string? Field, string Message);
