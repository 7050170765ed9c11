using Sluice.Alerts;
using Sluice.Core.Status;
using Sluice.Jobs;

namespace Sluice.Tests.Alerts;

/// <summary>Figures made up by a test: lake commits, dead letters and job runs as lists, pipelines from a real status board.</summary>
internal sealed class FakeAlertFacts(StatusBoard board) : IAlertFacts
{
    public Dictionary<string, DateTimeOffset> Commits { get; } = [];

    public List<(string Source, DateTimeOffset At)> Letters { get; } = [];

    public List<JobRun> Runs { get; } = [];

    public DateTimeOffset? LastCommit(string table) => Commits.TryGetValue(table, out var at) ? at : null;

    public PipelineView? Pipeline(string qualifiedName) => board.Snapshot().Pipelines.FirstOrDefault(p => $"{p.Recipe}/{p.Pipeline}" == qualifiedName);

    public long DeadLettersSince(string recipe, string? source, DateTimeOffset since) =>
        Letters.Count(l => l.At >= since && (source is null || l.Source.StartsWith(source, StringComparison.Ordinal)));

    public IReadOnlyList<JobRun> RecentRuns(string job) => Runs.Where(r => r.Job == job).OrderByDescending(r => r.Id).ToList();

    public void Run(string job, DateTimeOffset started, string status, string? message = null) =>
        Runs.Add(new JobRun(Runs.Count + 1, job, started, "schedule", started, status == JobRunStore.Running ? null : started.AddSeconds(5), status, null, null, message));
}
