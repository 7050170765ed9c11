namespace Sluice.Alerts.Conditions;

/// <summary>
/// <c>lag</c>: fires when a pipeline's slowest sink is more than <see cref="MaxLag"/> behind what its source read, or
/// when the source's backlog (files waiting in incoming/, landed bytes not yet committed) exceeds <see cref="MaxBacklog"/>.
/// </summary>
public sealed class LagCondition(string pipeline, TimeSpan? maxLag, long? maxBacklog) : AlertCondition
{
    public override string Kind => "lag";

    public override string Subject => $"pipeline {pipeline}";

    public override AlertCheck Check(IAlertFacts facts, DateTimeOffset now, DateTimeOffset watchedSince)
    {
        ArgumentNullException.ThrowIfNull(facts);
        if (facts.Pipeline(pipeline) is not { } p)
        {
            return new AlertCheck(false, $"pipeline {pipeline}: not running in this process");
        }

        var lag = p.Sinks.Count == 0 ? 0 : p.Sinks.Max(s => s.LagSeconds);
        var slowest = p.Sinks.OrderByDescending(s => s.LagSeconds).FirstOrDefault()?.Sink;
        var problems = new List<string>();
        if (maxLag is { } most && lag > most.TotalSeconds)
        {
            problems.Add($"sink '{slowest}' is {Ago(TimeSpan.FromSeconds(lag))} behind its source, more than {Ago(most)}");
        }

        if (maxBacklog is { } limit && p.Backlog is { } b && b.Value > limit)
        {
            problems.Add($"backlog of {Count(b.Value)} {b.Unit}, more than {Count(limit)}");
        }

        return problems.Count > 0
            ? new AlertCheck(true, $"pipeline {pipeline}: {string.Join("; ", problems)}")
            : new AlertCheck(false, $"pipeline {pipeline}: {lag:0.#} s behind" + (p.Backlog is { } x ? $", backlog {Count(x.Value)} {x.Unit}" : ""));
    }
}
