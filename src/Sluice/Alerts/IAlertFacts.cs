using Sluice.Core.Status;
using Sluice.Jobs;

namespace Sluice.Alerts;

/// <summary>The figures alert conditions read: the status board, the lake manifest, dead letters and job runs.</summary>
public interface IAlertFacts
{
    /// <summary>When a lake table last received data (its newest manifest commit), or null when it never did.</summary>
    DateTimeOffset? LastCommit(string table);

    /// <summary>A pipeline's figures in this process (<c>recipe/pipeline</c>), or null when it is not running here.</summary>
    PipelineView? Pipeline(string qualifiedName);

    /// <summary>Dead letters of a recipe's sources (or of one source, by prefix) added at or after <paramref name="since"/>.</summary>
    long DeadLettersSince(string recipe, string? source, DateTimeOffset since);

    /// <summary>The newest runs of a job (<c>recipe/job</c>, exactly), newest first.</summary>
    IReadOnlyList<JobRun> RecentRuns(string job);
}
