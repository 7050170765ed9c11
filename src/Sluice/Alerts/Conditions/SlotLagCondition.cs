namespace Sluice.Alerts.Conditions;

/// <summary><c>slot_lag</c>: fires when a CDC pipeline's replication slot is more than <see cref="MaxBytes"/> of WAL or <see cref="MaxLag"/> behind the server.</summary>
public sealed class SlotLagCondition(string pipeline, long? maxBytes, TimeSpan? maxLag) : AlertCondition
{
    public override string Kind => "slot_lag";

    public override string Subject => $"pipeline {pipeline}";

    public override AlertCheck Check(IAlertFacts facts, DateTimeOffset now, DateTimeOffset watchedSince)
    {
        ArgumentNullException.ThrowIfNull(facts);
        if (facts.Pipeline(pipeline)?.Slot is not { } slot)
        {
            return new AlertCheck(false, $"pipeline {pipeline}: no slot figures yet");
        }

        var problems = new List<string>();
        if (maxBytes is { } bytes && slot.LagBytes > bytes)
        {
            problems.Add($"{Count(slot.LagBytes)} bytes of WAL behind, more than {Count(bytes)}");
        }

        if (maxLag is { } most && slot.LagSeconds > most.TotalSeconds)
        {
            problems.Add($"{Ago(TimeSpan.FromSeconds(slot.LagSeconds))} behind, more than {Ago(most)}");
        }

        var head = $"pipeline {pipeline}: slot {slot.Slot}";
        return problems.Count > 0
            ? new AlertCheck(true, $"{head} is {string.Join(" and ", problems)}")
            : new AlertCheck(false, $"{head}: {Count(slot.LagBytes)} bytes, {slot.LagSeconds:0.#} s behind");
    }
}
