using Sluice.Core.Recipes;
using Sluice.Core.Status;
using Sluice.Jobs;

namespace Sluice.Alerts;

/// <summary>The figures of a running engine: the status board of this process, and the metadata store shared by every process of the data folder.</summary>
internal sealed class EngineAlertFacts(IEngineServices services) : IAlertFacts
{
    private readonly JobRunStore _runs = new(services.Metadata, services.Time);

    public DateTimeOffset? LastCommit(string table) => services.Lake.LastCommitAt(table);

    public PipelineView? Pipeline(string qualifiedName) => services.Status.Find(qualifiedName)?.View(services.Time.GetUtcNow(), history: false);

    public long DeadLettersSince(string recipe, string? source, DateTimeOffset since) => services.DeadLetters.CountSince(recipe, source, since);

    public IReadOnlyList<JobRun> RecentRuns(string job) => _runs.Runs(job, 5);
}
