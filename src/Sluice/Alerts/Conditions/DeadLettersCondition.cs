namespace Sluice.Alerts.Conditions;

/// <summary><c>dead_letters</c>: fires when more than <see cref="MoreThan"/> dead letters were added within the last <see cref="Within"/>.</summary>
public sealed class DeadLettersCondition(string recipe, string? source, long moreThan, TimeSpan within) : AlertCondition
{
    public override string Kind => "dead_letters";

    public override string Subject => source is null ? $"dead letters of {recipe}" : $"dead letters of {source}";

    public override AlertCheck Check(IAlertFacts facts, DateTimeOffset now, DateTimeOffset watchedSince)
    {
        ArgumentNullException.ThrowIfNull(facts);
        var added = facts.DeadLettersSince(recipe, source, now - within);
        var what = $"{Subject}: {Count(added)} new in the last {Ago(within)}";
        return added > moreThan ? new AlertCheck(true, $"{what}, more than {Count(moreThan)}") : new AlertCheck(false, what);
    }
}
