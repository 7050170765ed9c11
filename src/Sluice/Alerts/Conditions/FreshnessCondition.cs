namespace Sluice.Alerts.Conditions;

/// <summary><c>freshness</c>: fires when lake table <see cref="Table"/> received no new data for longer than <see cref="Within"/>.</summary>
public sealed class FreshnessCondition(string table, TimeSpan within) : AlertCondition
{
    public override string Kind => "freshness";

    public override string Subject => $"table {table}";

    public string Table => table;

    public TimeSpan Within => within;

    public override AlertCheck Check(IAlertFacts facts, DateTimeOffset now, DateTimeOffset watchedSince)
    {
        ArgumentNullException.ThrowIfNull(facts);
        var last = facts.LastCommit(table);
        var quiet = now - (last ?? watchedSince);
        var what = last is { } l ? $"last new data {Ago(now - l)} ago ({Time(l)})" : $"no data since the alert was set up ({Time(watchedSince)})";
        return quiet > within
            ? new AlertCheck(true, $"table {table}: no new data for {Ago(quiet)}, more than {Ago(within)}; {what}")
            : new AlertCheck(false, $"table {table}: {what}");
    }
}
