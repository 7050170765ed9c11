using Sluice.Models.Rules;

namespace Sluice.Models;

/// <summary>
/// One model: a SQL file (<c>models/&lt;schema&gt;/&lt;name&gt;.sql</c>, optional YAML header in a leading <c>/* */</c> comment)
/// or a clean-rules YAML file (<c>models/&lt;schema&gt;/&lt;name&gt;.yaml</c>). Its name is <c>schema.name</c>, from the path.
/// </summary>
public sealed record ModelDefinition
{
    public required string Name { get; init; }

    public required ModelKind Kind { get; init; }

    /// <summary>The file, relative to the working folder (for messages).</summary>
    public required string File { get; init; }

    /// <summary>The SELECT (a template: <c>{{ as_of }}</c>); empty for clean models, whose SQL is generated per engine.</summary>
    public string Sql { get; init; } = "";

    /// <summary>Line of the file where <see cref="Sql"/> starts.</summary>
    public int SqlLine { get; init; } = 1;

    public IReadOnlyList<string> DeclaredDependencies { get; init; } = [];

    /// <summary>Models this one reads (declared or found in its SQL), set when the project is loaded.</summary>
    public IReadOnlyList<string> Dependencies { get; init; } = [];

    /// <summary>Lake tables this one reads (declared sources found in its SQL).</summary>
    public IReadOnlyList<string> Sources { get; init; } = [];

    public IncrementalSpec? Incremental { get; init; }

    public SnapshotSpec? Snapshot { get; init; }

    public CleanSpec? Clean { get; init; }

    public IReadOnlyList<ModelTest> Tests { get; init; } = [];

    /// <summary>What a run as of D reads of its day-partitioned inputs (<c>reads</c>): decides which input changes make D stale.</summary>
    public InputWindow Reads { get; init; } = InputWindow.History;

    /// <summary>Labels to select models by (<c>tag:x</c>).</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];

    public string Schema => Name[..Name.IndexOf('.', StringComparison.Ordinal)];

    public string Table => Name[(Name.IndexOf('.', StringComparison.Ordinal) + 1)..];

    /// <summary>Whether the table keeps state across runs (a later run builds on earlier ones), so reprocessing a day means rewinding it.</summary>
    public bool Stateful => Kind is ModelKind.Incremental or ModelKind.Snapshot or ModelKind.Clean;

    /// <summary>Whether a rewind to a date keeps everything before it (else reprocessing replays from the first day).</summary>
    /// <remarks>A timestamp snapshot's versions are dated by the source, not by the run that wrote them, so it is rebuilt.</remarks>
    public bool CanRewindByDate => Kind switch
    {
        ModelKind.Incremental => Incremental!.CanRewindByDate,
        ModelKind.Snapshot => Snapshot!.Strategy == SnapshotStrategy.Check,
        _ => true,
    };

    /// <summary>The date column a run as of D owns entirely, for partition-like kinds.</summary>
    public string? PartitionColumn => Kind switch
    {
        ModelKind.Clean => CleanSpec.FileDateOutput,
        ModelKind.Incremental => Incremental!.PartitionBy,
        _ => null,
    };

    public override string ToString() => Name;
}

/// <summary>
/// What a model's run as of D reads of its day-partitioned inputs (sources, partition and clean models), so which
/// changed input days make its day D stale (<c>reads</c> in the header).
/// </summary>
public enum InputWindow
{
    /// <summary>Every input day up to D (a year-to-date sum): a changed input day d makes every D &gt;= d stale (default).</summary>
    History,

    /// <summary>Only the input day D (<c>WHERE file_date = {{ as_of }}</c>): a changed input day d makes only D = d stale.</summary>
    Day,
}
