namespace Sluice.Connectors.Files;

public enum FileStatus
{
    /// <summary>Rows committed to the lake; the file moved to processed/.</summary>
    Landed,

    /// <summary>The same content was ingested before: nothing landed again; the file moved to processed/.</summary>
    Duplicate,

    /// <summary>Nothing landed; the file moved to failed/ with its .error.json.</summary>
    Failed,
}

/// <summary>What became of one dropped file.</summary>
public sealed record FileOutcome(string File, string? FileType, FileStatus Status, long Rows, long Quarantined, int Partitions, string? Reason, string FinalPath);
