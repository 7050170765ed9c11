namespace Sluice.Testing;

/// <summary>One case of a recipe's tests: <c>recipes/&lt;r&gt;/tests/&lt;name&gt;/case.yaml</c> and the files it names.</summary>
public sealed record TestCase(string Name, string Folder, string Description, IReadOnlyList<string> Volatile, IReadOnlyList<CaseStep> Steps)
{
    /// <summary>case.yaml as errors show it (relative to the working folder when inside it).</summary>
    public string File => Display(Path.Combine(Folder, CaseFile.Name));

    /// <summary>A fixture's file as errors show it.</summary>
    public static string Display(string path) =>
        Path.GetRelativePath(Directory.GetCurrentDirectory(), path) is var relative && !relative.StartsWith("..", StringComparison.Ordinal) ? relative : path;
}

/// <summary>What a step puts in, how long it may take, and what the outputs must then hold.</summary>
public sealed record CaseStep(int Number, int Line, IReadOnlyList<CaseInput> Inputs, IReadOnlyList<CaseExpectation> Expect, TimeSpan Timeout);

/// <summary>One input of a step: files dropped, an HTTP body posted, SQL run on the recipe's PostgreSQL, or the pages a pull source reads.</summary>
public sealed record CaseInput(CaseInputKind Kind, string Path, int Line, string? Pipeline)
{
    public string? Tenant { get; init; }

    public string? ContentType { get; init; }

    public string? Stream { get; init; }

    /// <summary>A <c>pages:</c> input's object (default: the pipeline's <c>salesforce</c> source's).</summary>
    public string? Object { get; init; }
}

public enum CaseInputKind
{
    Files,
    Http,
    Sql,
    Pages,
}

/// <summary>
/// The rows an output must hold after a step: a lake table (<c>table:</c>), a sink's table on a server
/// (<c>target: postgres:schema.table</c>, <c>clickhouse:database.table</c>), Redis keys (<c>target: redis:pattern</c>,
/// <see cref="Table"/> the pattern) or what an HTTP API received (<c>target: http:VARIABLE</c>, <see cref="Table"/>
/// the variable the recipe names the API's URL with), or the dead-letter store (<c>target: dead_letters</c>).
/// </summary>
public sealed record CaseExpectation(OutputPlace Place, string Table, string RowsFile, int Line)
{
    public IReadOnlyList<string> Columns { get; init; } = [];

    public IReadOnlyList<string> Key { get; init; } = [];

    public IReadOnlyList<string> Ignore { get; init; } = [];

    public string Describe => Place switch
    {
        OutputPlace.Lake => $"table {Table}",
        OutputPlace.Redis => $"redis keys {Table}",
        OutputPlace.Http => $"http requests to ${{{Table}}}",
        OutputPlace.DeadLetters => "dead letters",
        _ => $"{Place.ToString().ToLowerInvariant()} table {Table}",
    };
}

public enum OutputPlace
{
    Lake,
    Postgres,
    ClickHouse,
    Redis,
    Http,
    DeadLetters,
}
